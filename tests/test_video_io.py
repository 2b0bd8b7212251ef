"""network.video: exact rates, stream copy, odd sizes, rotation, atomic writes (also on
SIGTERM and SIGINT), image files."""
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from network import UserError
from network.video import (VideoReader, VideoWriter, list_images, pad_to_even, probe_video,
                           read_image, write_image)
from network.video.paths import written_atomically
from video_clips import (audio_packets, bigbuckbunny, carphone, decoded_frames,
                         video_stream_facts, write_clip)

NTSC = Fraction(30000, 1001)


def gradient_frames(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Smooth frames that survive yuv420p: a horizontal ramp shifted by 3 px per frame."""
    x = np.arange(width)[None, :, None]
    y = np.arange(height)[:, None, None]
    return [np.broadcast_to(((x * 3 + y + 9 * i) % 256), (height, width, 3)).astype(np.uint8)
            for i in range(count)]


def test_writer_keeps_exact_fractional_rate_and_constant_pts(tmp_path):
    out = tmp_path / "out.mp4"
    with VideoWriter(str(out), (64, 48), 59.94) as writer:    # read as 60000/1001
        with pytest.raises(ValueError, match="^frame of 32x24 pixels for a 64x48 stream$"):
            writer.write(np.zeros((24, 32, 3), np.uint8))
        for frame in gradient_frames(7):
            writer.write(frame)
    facts = video_stream_facts(out)
    assert facts["codec"] == "h264" and facts["pix_fmt"] == "yuv420p"
    assert facts["average_rate"] == Fraction(60000, 1001) == facts["guessed_rate"]
    assert facts["frames"] == 7
    assert facts["times"] == [Fraction(j * 1001, 60000) for j in range(7)]


def test_reader_decodes_in_order_and_probe_reports_header(tmp_path):
    clip = tmp_path / "in.mp4"
    frames = gradient_frames(5)
    write_clip(clip, frames, NTSC)
    info = probe_video(str(clip))
    assert (info.width, info.height, info.rate, info.frame_count) == (64, 48, NTSC, 5)
    with VideoReader(clip) as reader:
        decoded = [frame.image for frame in reader.frames()]
    assert len(decoded) == 5
    for got, want in zip(decoded, frames):  # crf 0: only the yuv420p round trip differs
        assert np.abs(got.astype(int) - want).mean() < 2


def test_odd_size_is_padded_to_even_by_edge_replication(tmp_path):
    frame = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    padded = pad_to_even(frame)
    assert padded.shape == (6, 8, 3)
    np.testing.assert_array_equal(padded[:5, :7], frame)
    np.testing.assert_array_equal(padded[5, :7], frame[4])
    np.testing.assert_array_equal(padded[:5, 7], frame[:, 6])
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, (7, 5), NTSC) as writer:
        writer.write(frame)
        writer.write(frame)
    assert video_stream_facts(out)["size"] == (8, 6)
    # Only subsampled chroma needs it: 4:2:2 an even width, 4:4:4 nothing.
    for name, codec, pix_fmt, size in (("odd422.mov", "prores", "yuv422p10le", (8, 5)),
                                       ("odd444.mkv", "ffv1", "yuv444p", (7, 5)),
                                       ("odd444.mp4", "h264", "yuv444p", (7, 5))):
        with VideoWriter(tmp_path / name, (7, 5), NTSC, codec=codec, pix_fmt=pix_fmt) as writer:
            writer.write(frame)
            writer.write(frame)
        assert video_stream_facts(tmp_path / name)["size"] == size, name
    kept = decoded_frames(tmp_path / "odd444.mkv")[0]       # lossless but for the YUV rounding
    assert kept.shape == (5, 7, 3) and np.abs(kept.astype(int) - frame).max() <= 2


def test_display_rotation_is_carried_over(tmp_path):
    clip = tmp_path / "rotated.mp4"
    write_clip(clip, gradient_frames(2), NTSC, rotation=90)
    info = probe_video(clip)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, (64, 48), NTSC, display_matrix=info.display_matrix) as writer:
        for frame in gradient_frames(2):
            writer.write(frame)
    assert video_stream_facts(out)["rotation"] == 90


def test_audio_packets_are_copied_byte_identical(tmp_path):
    clip = tmp_path / "bbb.mp4"
    write_clip(clip, [np.zeros((36, 64, 3), np.uint8)] * 10, Fraction(25),
               audio_from=bigbuckbunny())
    out = tmp_path / "out.mp4"
    with VideoReader(clip) as reader, VideoWriter(out, (64, 36), Fraction(50),
                                                  copy_from=reader.copied_streams) as writer:
        for frame in reader.frames(lambda p: writer.copy_packet(p, p.stream.index)):
            writer.write(frame.image)
    source, copied = audio_packets(clip), audio_packets(out)
    assert len(source) == 19  # 0.4 s of 1024-sample AAC frames at 48 kHz start before 0.4 s
    assert copied == source


def test_frame_limit_also_cuts_the_audio(tmp_path):
    clip = tmp_path / "bbb.mp4"
    write_clip(clip, [np.zeros((36, 64, 3), np.uint8)] * 10, Fraction(25),
               audio_from=bigbuckbunny())
    kept = []
    with VideoReader(clip) as reader:
        frames = list(reader.frames(lambda p: kept.append(float(p.pts * p.time_base)), limit=4))
    assert len(frames) == 4
    assert kept and max(kept) < 4 / 25 <= max(kept) + 1024 / 48000


def test_failed_write_leaves_existing_file_and_no_partial(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(RuntimeError):
        with VideoWriter(out, (64, 48), NTSC) as writer:
            writer.write(gradient_frames(1)[0])
            raise RuntimeError("interrupted")
    assert out.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [out]


def test_atomic_write_replaces_only_when_complete(tmp_path):
    out = tmp_path / "report.json"
    out.write_text("precious")
    with pytest.raises(KeyboardInterrupt):
        with written_atomically(out) as partial:
            partial.write_text("half")
            raise KeyboardInterrupt
    assert out.read_text() == "precious" and list(tmp_path.iterdir()) == [out]
    with written_atomically(out) as partial:
        assert partial == tmp_path / ".report.json.part"
        partial.write_text("new")
    assert out.read_text() == "new" and list(tmp_path.iterdir()) == [out]


def test_writer_without_frames_is_an_error_and_leaves_nothing(tmp_path):
    out = tmp_path / "out.mkv"
    out.write_bytes(b"precious")
    with pytest.raises(UserError, match="no video frames"):
        with VideoWriter(out, (64, 48), NTSC):
            pass
    assert out.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize("signum, code, message", [(signal.SIGTERM, 143, "terminated"),
                                                    (signal.SIGINT, 130, "interrupted")])
def test_signal_mid_conversion_leaves_no_partial_and_keeps_existing_output(
        tmp_path, lite_ckpt, signum, code, message):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    partial = tmp_path / ".out.mp4.part"
    command = [sys.executable, "demo_2x.py", "--video", str(bigbuckbunny()), "--out", str(out),
               "--ckpt", str(lite_ckpt), "--device", "cpu", "--no_progress"]
    # As from a terminal: a suite started in the background (`pytest &`) ignores SIGINT, and
    # a child would inherit that, so Python in it would never see Ctrl-C.
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "OMP_NUM_THREADS": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        give_up = time.monotonic() + 300  # a guard against hanging, not a timing assertion
        while not partial.exists():  # the writer is open: the conversion is under way
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < give_up, "the demo never started writing"
            time.sleep(0.05)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr.decode()
    assert stderr.decode().strip().splitlines()[-1] == message
    assert out.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize("name", ["out.avi", "missing_dir/out.mp4"])
def test_writer_refuses_unsupported_container_or_missing_dir(tmp_path, name):
    with pytest.raises(UserError):
        VideoWriter(tmp_path / name, (64, 48), NTSC)


def test_probe_rejects_non_video_short_video_and_missing_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    one = tmp_path / "one.mp4"
    write_clip(one, gradient_frames(1), NTSC)
    for path, message in [(text, "cannot read"), (one, "1 video frame"),
                          (tmp_path / "nope.mp4", "not found")]:
        with pytest.raises(UserError, match=message):
            probe_video(path)


def test_images_keep_depth_and_channels(tmp_path):
    rng = np.random.default_rng(1)
    for name, image in [("grey.png", rng.integers(0, 256, (9, 11), dtype=np.uint8)),
                        ("deep.png", rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)),
                        ("rgba.png", rng.integers(0, 256, (9, 11, 4), dtype=np.uint8))]:
        write_image(tmp_path / name, image)
        back = read_image(tmp_path / name)
        assert back.dtype == image.dtype
        np.testing.assert_array_equal(back, image)
    write_image(tmp_path / "flat.jpg", rng.integers(0, 65536, (9, 11, 4), dtype=np.uint16))
    assert read_image(tmp_path / "flat.jpg").shape == (9, 11, 3)
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["deep.png", "flat.jpg", "grey.png", "rgba.png"]


def test_frames_are_listed_in_natural_order(tmp_path):
    """Numbers in names compare by value (frame_9 < frame_10 < frame_100), whatever the order
    the folder returns them in, and letters whatever their case (as file browsers list them);
    01 and 1 are the same number and fall back to characters."""
    image = np.zeros((4, 4), np.uint8)
    for name in ["frame_10.png", "frame_9.png", "frame_100.jpg", "frame_01.png", "frame_1.png",
                 "frame_2.tif", "Frame_5.png"]:
        write_image(tmp_path / name, image)
    (tmp_path / "frame_3.txt").write_text("not a frame")
    assert [p.name for p in list_images(tmp_path)] == [
        "frame_01.png", "frame_1.png", "frame_2.tif", "Frame_5.png", "frame_9.png", "frame_10.png",
        "frame_100.jpg"]


def test_read_image_rejects_missing_and_broken_files(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG nonsense")
    with pytest.raises(UserError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(UserError, match="cannot read"):
        read_image(broken)


def bt601_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """[3H/2, W] yuv420p planes (limited range) -> [H, W, 3] float RGB, chroma repeated 2x2."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    y = yuv[:height].astype(float) - 16
    u = yuv[height:height + height // 4].reshape(height // 2, width // 2).astype(float) - 128
    v = yuv[height + height // 4:].reshape(height // 2, width // 2).astype(float) - 128
    u, v = (np.repeat(np.repeat(c, 2, axis=0), 2, axis=1) for c in (u, v))
    rgb = np.stack([1.164 * y + 1.596 * v,
                    1.164 * y - 0.392 * u - 0.813 * v,
                    1.164 * y + 2.017 * u], axis=2)
    return np.clip(rgb, 0, 255)


def test_reader_converts_like_the_bt601_formula_without_bias():
    with av.open(str(carphone())) as container:
        yuv = next(container.decode(video=0)).to_ndarray()  # untagged 4:2:0 -> BT.601
    with VideoReader(carphone()) as reader:
        rgb = next(reader.frames()).image.astype(float)
    expected = bt601_to_rgb(yuv)
    assert abs((rgb - expected).mean()) < 0.3  # no systematic shift
    assert np.abs(rgb - expected).mean() < 2.0  # chroma interpolation differs from 2x2 repeat


def test_write_then_read_round_trip_is_unbiased(tmp_path):
    frames = decoded_frames(carphone(), 0, 2)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, (176, 144), NTSC, crf=0) as writer:
        for frame in frames:
            writer.write(frame)
    with VideoReader(out) as reader:
        back = [frame.image for frame in reader.frames()]
    for got, want in zip(back, frames):
        difference = got.astype(float) - want
        assert abs(difference.mean()) < 0.2 and np.abs(difference).mean() < 1.5
