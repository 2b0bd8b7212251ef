"""demo_2x.py's output timeline on real and generated clips: --fps, variable frame rates,
durations, streams that start apart, damaged input. Lite stand-in weights, tiny frames.

Every expected time is worked out from the input's own timestamps (read back with PyAV)."""
import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import demo_2x
from network import Interpolator, UserError, interpolate_video, load_network, parse_rate
from network.video import VideoReader
from video_clips import (audio_packets, bigbuckbunny, decoded_frames, resized, video_stream_facts,
                         write_clip)

F = Fraction
CLOCK = F(1, 90000)  # MPEG-TS's clock; also used for the MP4 clips made here
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
MEGAMIND = VTEST.with_name("Megamind.avi")


@pytest.fixture
def run(lite_ckpt, device):
    """demo_2x.main with the stand-in lite checkpoint; returns the exit code."""
    def run_demo(*argv):
        return demo_2x.main([*map(str, argv), "--ckpt", str(lite_ckpt), "--device", str(device),
                             "--no_progress", "--global_off"])
    return run_demo


def moving_square(count: int, size=(64, 48)) -> list[np.ndarray]:
    """A white square moving right over a red gradient, [H, W, 3] uint8."""
    width, height = size
    frames = []
    for k in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[..., 0] = np.linspace(0, 200, width).astype(np.uint8)
        frame[10:26, 4 + 6 * k:20 + 6 * k] = 255
        frames.append(frame)
    return frames


def timed_clip(path: Path, frames: list[np.ndarray], ticks: list[int], *, rate: int = 20,
               audio_start: int | None = None) -> None:
    """Encode RGB frames shown at `ticks` of 1/90000 s (H.264, crf 0; `rate` is only the
    nominal rate). With `audio_start` (ticks of 1/48000 s): ten MP2 frames of a tone."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height = frames[0].shape[1], frames[0].shape[0]
        video.pix_fmt, video.options = "yuv420p", {"crf": "0"}
        video.time_base = video.codec_context.time_base = CLOCK
        audio = None
        if audio_start is not None:
            audio = out.add_stream("mp2", rate=48000)
            audio.layout = "stereo"
        for rgb, tick in zip(frames, ticks):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = tick, CLOCK
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            tone = (8000 * np.sin(np.arange(11520) * 2 * np.pi * 440 / 48000)).astype(np.int16)
            for k in range(10):
                samples = np.repeat(tone[1152 * k:1152 * (k + 1)], 2)[None]  # interleaved L R
                frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
                frame.sample_rate, frame.time_base = 48000, F(1, 48000)
                frame.pts = audio_start + 1152 * k
                out.mux(audio.encode(frame))
            out.mux(audio.encode(None))


def input_times(path: Path) -> tuple[list[Fraction], Fraction]:
    """The decoded frames' times and the end of the last one, exact: its time plus its
    duration, or plus the interval before it where the container has no duration (TS)."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    times = [F(f.pts) * f.time_base for f in frames]
    duration = F(frames[-1].duration) * frames[-1].time_base or times[-1] - times[-2]
    return times, times[-1] + duration


def audio_times(path: Path) -> list[tuple[bytes, Fraction]]:
    """(payload, exact start) of every packet of the first audio stream."""
    with av.open(str(path)) as container:
        return [(bytes(p), F(p.pts) * p.time_base) for p in container.demux(audio=0) if p.size]


def stream_starts(path: Path) -> list[Fraction]:
    """Each stream's start time from the container header (after MP4 edit lists), exact."""
    with av.open(str(path)) as container:
        return [F(s.start_time) * s.time_base for s in container.streams]


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b).mean())


def test_api_refuses_an_unknown_container_or_quality_before_any_work(tmp_path, lite_ckpt):
    clip = tmp_path / "in.mp4"
    timed_clip(clip, moving_square(2), [0, 4500])
    interpolator = Interpolator(load_network(lite_ckpt, global_motion=False))
    with pytest.raises(UserError, match=r"must end in one of \.mp4, "):
        interpolate_video(clip, tmp_path / "out.xyz", interpolator)
    with pytest.raises(UserError, match="^crf must be from 0 .best. to 51 .worst., got 99$"):
        interpolate_video(clip, tmp_path / "out.mp4", interpolator, crf=99)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_vfr_multi_puts_each_new_frame_halfway_between_true_times(tmp_path, run, caplog):
    clip = tmp_path / "vfr.mp4"
    timed_clip(clip, moving_square(5), [0, 3000, 9000, 12000, 21000])  # 33, 67, 33, 100 ms gaps
    times, end = input_times(clip)
    assert end == F(21000 + 4500) * CLOCK  # the last frame lasts 1/20 s (the nominal rate)
    out = tmp_path / "vfr_2x.mp4"
    with caplog.at_level(logging.INFO, logger="demo_2x"):
        assert run("--video", clip, "--out", out, "--crf", 0) == 0
    assert f"wrote {out}: 10 frames, at the input's variable rate with 2 per input frame" in [
        r.getMessage() for r in caplog.records]
    expected = []
    for start, stop in zip(times, times[1:] + [end]):
        expected += [start, (start + stop) / 2]  # the last frame is held for its duration
    facts = video_stream_facts(out)
    assert facts["times"] == expected and facts["frames"] == 10
    assert input_times(out)[1] == end  # the last new frame lasts until the input's end
    result, source = decoded_frames(out), decoded_frames(clip)
    for i in range(5):
        assert mean_abs(result[2 * i], source[i]) < 1.0
    np.testing.assert_array_equal(result[9], result[8])


def test_rate_no_32_bit_time_base_holds_is_written_in_microseconds(tmp_path, run):
    clip = tmp_path / "three.mp4"   # 1/90000 clock: with 1/12.3456789 s frames, the exact
    timed_clip(clip, moving_square(3), [0, 4500, 9000])   # time base needs 41 bits
    out = tmp_path / "odd_rate.mp4"
    assert run("--video", clip, "--out", out, "--fps", "12.3456789") == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].time_base == F(1, 10**6)
    assert video_stream_facts(out)["times"] == [F(0), F(81, 1000)]   # 1/12.3456789 = 0.0810000007


def test_vfr_to_constant_rate_places_frames_against_true_times(tmp_path, run):
    clip = tmp_path / "vfr.mp4"
    timed_clip(clip, moving_square(4), [0, 3000, 12000, 15000])  # 33, 100, 33 ms; last 50 ms
    times, end = input_times(clip)
    out = tmp_path / "vfr_30.mp4"
    assert run("--video", clip, "--out", out, "--fps", 30, "--crf", 0) == 0
    facts = video_stream_facts(out)
    assert facts["times"] == [F(k, 30) for k in range(7)]  # 0 .. 200 ms: until the input's end
    assert facts["average_rate"] == 30
    assert end - F(1, 30) < F(7, 30) <= end + F(1, 30)
    result, source = decoded_frames(out), decoded_frames(clip)
    assert mean_abs(result[0], source[0]) < 1.0 and mean_abs(result[1], source[1]) < 1.0
    assert mean_abs(result[4], source[2]) < 1.0  # 4/30 s is where input frame 2 is
    assert mean_abs(result[6], source[3]) < 1.0  # 200 ms: the last frame, held


def test_bigbuckbunny_25_to_60_fps_keeps_audio_and_duration(tmp_path, run):
    clip = tmp_path / "bbb.mp4"
    write_clip(clip, resized(decoded_frames(bigbuckbunny(), 0, 6), (96, 54)), F(25),
               audio_from=bigbuckbunny())
    out = tmp_path / "bbb_60.mp4"
    assert run("--video", clip, "--out", out, "--fps", "60", "--crf", 0) == 0
    facts = video_stream_facts(out)
    assert facts["times"] == [F(k, 60) for k in range(15)]  # 6 frames of 1/25 s = 14.4 / 60 s
    assert facts["average_rate"] == 60
    assert audio_packets(out) == audio_packets(clip)
    result, source = decoded_frames(out), decoded_frames(clip)
    for k, i in ((0, 0), (12, 5)):  # 0 and 0.2 s fall on input frames 0 and 5
        assert mean_abs(result[k], source[i]) < 2.0  # a second 4:2:0 round trip


def test_ntsc_decimal_rate_is_the_exact_fraction(tmp_path, run):
    clip = tmp_path / "ntsc.mp4"
    write_clip(clip, moving_square(3), F(24000, 1001))
    out = tmp_path / "ntsc_60.mp4"
    assert run("--video", clip, "--out", out, "--fps", "59.94") == 0
    facts = video_stream_facts(out)
    assert facts["average_rate"] == facts["guessed_rate"] == F(60000, 1001)
    assert facts["times"] == [F(1001 * k, 60000) for k in range(8)]  # 3/(24000/1001) s = 7.5


def test_constant_rate_matroska_keeps_its_exact_rate(tmp_path, run):
    """Matroska stores whole milliseconds: 29.97 fps frames at 0, 33, 67, 100 ms. Each within
    half a millisecond of k * 1001/30000 s is read as that, so --multi 2 gives exactly
    60000/1001 fps, not frames at 16.5, 50, 83.5 ms (an average of 240000/3997)."""
    clip = tmp_path / "ntsc.mkv"
    write_clip(clip, moving_square(4), F(30000, 1001))
    assert input_times(clip)[0] == [0, F(33, 1000), F(67, 1000), F(100, 1000)]
    out = tmp_path / "ntsc_2x.mp4"
    assert run("--video", clip, "--out", out) == 0
    facts = video_stream_facts(out)
    assert facts["times"] == [F(1001 * k, 60000) for k in range(8)]
    assert facts["average_rate"] == F(60000, 1001)
    # A clip cut from a longer one starts off the whole milliseconds' grid: 33 ms is frame 1.
    late = tmp_path / "late.mkv"
    write_clip(late, moving_square(4), F(30000, 1001), first_pts=1)
    assert input_times(late)[0] == [F(33, 1000), F(67, 1000), F(100, 1000), F(133, 1000)]
    assert run("--video", late, "--out", tmp_path / "late_2x.mp4") == 0
    assert video_stream_facts(tmp_path / "late_2x.mp4")["times"] == [
        F(1001 * k, 60000) for k in range(8)]       # shifted to start at 0, as every output


def test_streams_starting_apart_are_shifted_together_to_zero(tmp_path, run):
    clip = tmp_path / "late.ts"
    # Video from 600.1 s, audio from 600 s: as a broadcast capture that starts mid-stream.
    timed_clip(clip, moving_square(3), [54009000, 54012000, 54015000], audio_start=28800000)
    times, end = input_times(clip)
    source_audio = audio_times(clip)
    shift = min(times[0], source_audio[0][1])
    assert shift == source_audio[0][1] < times[0]
    out = tmp_path / "late_2x.mp4"
    assert run("--video", clip, "--out", out) == 0
    copied = audio_times(out)
    assert [payload for payload, _ in copied] == [payload for payload, _ in source_audio]
    assert [time for _, time in copied] == [time - shift for _, time in source_audio]
    expected = []
    for start, stop in zip(times, times[1:] + [end]):
        expected += [start - shift, (start + stop) / 2 - shift]
    assert video_stream_facts(out)["times"] == expected  # the 0.1 s offset is kept
    assert stream_starts(out) == [start - shift for start in stream_starts(clip)]


def test_a_stream_the_output_leaves_out_does_not_delay_the_video(tmp_path, run, caplog):
    clip = tmp_path / "late_video.mp4"   # MP2 audio from 0, video from 0.1 s
    timed_clip(clip, moving_square(2), [9000, 12000], audio_start=0)
    assert min(stream_starts(clip)) == 0 < input_times(clip)[0][0]
    out = tmp_path / "late_video.webm"   # WebM holds no MP2: the audio is left out
    caplog.set_level("WARNING")
    assert run("--video", clip, "--out", out) == 0
    assert any("leaving out audio stream" in r.getMessage() for r in caplog.records)
    facts = video_stream_facts(out)
    assert facts["frames"] == 4 and facts["times"][0] == 0   # not 0.1 s of nothing first


@pytest.mark.parametrize("video_start, audio_start", [(18000, 0), (0, 4800)])
def test_audio_starting_before_or_after_the_video_keeps_its_offset(tmp_path, run, video_start,
                                                                   audio_start):
    clip = tmp_path / "offset.mp4"  # audio 0.2 s ahead of the video, or 0.1 s behind it
    timed_clip(clip, moving_square(2), [video_start, video_start + 3000], audio_start=audio_start)
    times, end = input_times(clip)
    assert min(stream_starts(clip)) == 0  # nothing to shift
    out = tmp_path / "offset_2x.mp4"
    assert run("--video", clip, "--out", out) == 0
    assert audio_times(out) == audio_times(clip)  # MP2's priming packet starts before 0
    assert stream_starts(out) == stream_starts(clip)
    assert video_stream_facts(out)["times"] == [times[0], (times[0] + times[1]) / 2, times[1],
                                                (times[1] + end) / 2]


def test_max_frames_keeps_the_audio_until_the_last_frame_ends(tmp_path, run):
    clip = tmp_path / "slow.mp4"  # nominal 20 fps, but frame 2 lasts 100 ms, until 0.2 s
    timed_clip(clip, moving_square(4), [0, 4500, 9000, 18000], audio_start=0)
    times, _ = input_times(clip)
    end = times[3]              # the end of the third frame: where the fourth starts
    assert end == F(1, 5) > F(3, 20)
    out = tmp_path / "slow_2x.mp4"
    assert run("--video", clip, "--out", out, "--max_frames", 3) == 0
    assert video_stream_facts(out)["times"] == [F(k, 40) for k in range(5)] + [F(3, 20)]
    kept = [(payload, time) for payload, time in audio_times(clip) if time < end]
    assert len(kept) == 9 and audio_times(out) == kept   # 24 ms packets from 0 to 0.192 s


def test_damaged_ts_packet_is_skipped_with_a_warning_and_bridged(tmp_path, run, caplog):
    clip = tmp_path / "clean.ts"
    timed_clip(clip, moving_square(6), [9000 + 3600 * k for k in range(6)], rate=25)
    data = clip.read_bytes()
    packets = [data[i:i + 188] for i in range(0, len(data), 188)]
    video = [i for i, p in enumerate(packets) if ((p[1] & 0x1F) << 8 | p[2]) == 0x100]
    del packets[video[len(video) // 2]]  # one TS packet of a frame in the middle is lost
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(b"".join(packets))
    with av.open(str(damaged)) as container:
        bad = [F(f.pts) * f.time_base for f in container.decode(video=0) if f.is_corrupt]
    assert len(bad) == 1
    out = tmp_path / "damaged_2x.mp4"
    caplog.set_level("WARNING")
    assert run("--video", damaged, "--out", out) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"{float(bad[0]):.3f} s" in warnings[0]
    times, end = input_times(clip)
    good = [t for t in times if t != bad[0]]
    expected = []
    for start, stop in zip(good, good[1:] + [end]):
        expected += [start - times[0], (start + stop) / 2 - times[0]]
    facts = video_stream_facts(out)
    assert facts["times"] == expected  # the frame across the gap sits where the lost one was
    assert bad[0] - times[0] in expected


def _replace_packets(src: Path, dst: Path, damaged: set[int]) -> None:
    """Copy `src`'s video packets to `dst`, with random bytes in place of packets `damaged`."""
    rng = np.random.default_rng(1)
    with av.open(str(src)) as source, av.open(str(dst), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for index, packet in enumerate(p for p in source.demux(video=0) if p.size):
            if index in damaged:
                noise = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                noise.pts, noise.dts = packet.pts, packet.dts
                noise.time_base = packet.time_base
                packet = noise
            packet.stream = stream
            out.mux(packet)


def test_rejected_packets_warn_and_no_decodable_frame_is_one_line(tmp_path, run, caplog, capsys):
    clip = tmp_path / "clean.mp4"
    timed_clip(clip, moving_square(4), [0, 4500, 9000, 13500])
    rejected, hopeless = tmp_path / "rejected.mp4", tmp_path / "hopeless.mp4"
    _replace_packets(clip, rejected, {2})
    _replace_packets(clip, hopeless, {0, 1, 2, 3})
    caplog.set_level("WARNING")
    out = tmp_path / "out.mp4"
    assert run("--video", rejected, "--out", out) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "rejects at 0.100 s" in warnings[0]
    assert video_stream_facts(out)["times"] == [F(k, 40) for k in (0, 1, 2, 4, 6, 7)]
    capsys.readouterr()
    assert run("--video", hopeless, "--out", tmp_path / "none.mp4") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {hopeless}: no decodable video frame"]
    assert not (tmp_path / "none.mp4").exists()


@pytest.mark.skipif(not VTEST.exists(), reason="vtest.avi comes with opencv-doc (apt)")
def test_avi_without_timestamps_per_frame_keeps_its_rate(tmp_path, run):
    out = tmp_path / "vtest_2x.mp4"
    assert run("--video", VTEST, "--out", out, "--max_frames", 2) == 0
    facts = video_stream_facts(out)
    assert facts["size"] == (768, 576) and facts["average_rate"] == 20
    assert facts["times"] == [F(k, 20) for k in range(4)]


@pytest.mark.skipif(not MEGAMIND.exists(), reason="Megamind.avi comes with opencv-doc (apt)")
def test_avi_with_packed_b_frames_keeps_every_frame_in_time(caplog):
    """A DivX AVI whose decoded frames carry the presentation stamps in decoding order
    (1, 2, 3, 5, 4, 6, ...): timed by their decoding stamps, all 270 frames, one per tick."""
    caplog.set_level("WARNING")
    with VideoReader(MEGAMIND) as reader:
        times = [frame.time for frame in reader.frames()]
    tick = F(125, 2997)
    assert times == [tick * (k + 1) for k in range(270)]
    assert not caplog.records


def test_frame_repeating_a_timestamp_is_skipped_with_a_warning(tmp_path, run, caplog):
    clip = tmp_path / "repeat.mkv"  # Matroska accepts a repeated timestamp; PyAV decodes both
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.time_base = F(1, 1000)
        video.options = {"crf": "0", "bframes": "0"}
        for rgb, ms in zip(moving_square(5), [0, 40, 40, 80, 120]):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = ms, F(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    caplog.set_level("WARNING")
    out = tmp_path / "repeat_2x.mp4"
    assert run("--video", clip, "--out", out) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "0.040 s: not after the previous frame" in warnings[0]
    assert video_stream_facts(out)["times"] == [F(k, 50) for k in range(8)]


def test_python_api_takes_the_same_rate_and_reports_counts(tmp_path, lite_ckpt, device):
    clip = tmp_path / "vfr.mp4"
    timed_clip(clip, moving_square(4), [0, 3000, 12000, 15000])  # ends at 0.2167 s
    model = load_network(lite_ckpt, device=device, global_motion=False)
    out = tmp_path / "api.mkv"
    result = interpolate_video(clip, out, Interpolator(model, batch=2), fps=parse_rate("29.97"),
                               progress=False)
    assert (result.frames_in, result.frames_out, result.rate) == (4, 7, F(30000, 1001))
    # Matroska keeps milliseconds: each time k * 1001/30000 s rounded once.
    assert video_stream_facts(out)["times"] == [F(round(k * F(1001, 30)), 1000) for k in range(7)]
