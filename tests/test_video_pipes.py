"""network.video.y4m: yuv4mpegpipe streams read from and written to real pipes."""
import io
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from network import UserError
from network.video import StreamColour, Y4MReader, Y4MWriter
from video_clips import carphone

REPO = Path(__file__).resolve().parents[1]
NTSC = Fraction(30000, 1001)
# Reads y4m on stdin, writes it on stdout through RGB, as the demo's pipes do.
PASSTHROUGH = """
import sys
from network.video import Y4MReader, Y4MWriter
with Y4MReader(sys.stdin.buffer) as reader, Y4MWriter(
        sys.stdout.buffer, (reader.width, reader.height), reader.rate,
        colour=reader.colour) as writer:
    for frame in reader.frames():
        writer.write(frame.image, frame.time)
"""


def y4m_bytes(frames: list[av.VideoFrame], rate: Fraction) -> bytes:
    """A y4m stream of YUV frames, written by PyAV directly (not by network.video)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="yuv4mpegpipe", options={"strict": "-1"}) as out:
        stream = out.add_stream("wrapped_avframe", rate=rate)
        stream.width, stream.height = frames[0].width, frames[0].height
        stream.pix_fmt = frames[0].format.name
        stream.codec_context.color_range = 1  # limited, written as XCOLORRANGE=LIMITED
        for index, frame in enumerate(frames):
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def y4m_planes(data: bytes) -> tuple[Fraction, str, list[np.ndarray]]:
    """(rate, pix_fmt, frames as stored: [3H/2, W] planes as to_ndarray stacks them)."""
    with av.open(io.BytesIO(data), format="yuv4mpegpipe") as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format=f.format.name) for f in container.decode(stream)]
        return stream.average_rate, stream.codec_context.pix_fmt, frames


def carphone_frames(count: int) -> list[av.VideoFrame]:
    with av.open(str(carphone())) as container:
        return [frame for _, frame in zip(range(count), container.decode(video=0))]


def ten_bit_ramps(count: int, width: int = 512, height: int = 16) -> list[av.VideoFrame]:
    """Limited-range yuv420p10le frames: luma 64 ... 940 across the width, neutral chroma."""
    ramp = np.linspace(64, 940, width).round().astype(np.uint16)
    planes = (np.ascontiguousarray(np.broadcast_to(ramp, (height, width))),
              np.full((height // 2, width // 2), 512, np.uint16))
    frames = []
    for _ in range(count):
        frame = av.VideoFrame(width, height, "yuv420p10le")
        for plane, samples in zip(frame.planes, (planes[0], planes[1], planes[1])):
            plane.update(samples)
        frames.append(frame)
    return frames


def through_subprocess(data: bytes) -> bytes:
    result = subprocess.run([sys.executable, "-c", PASSTHROUGH], input=data, cwd=REPO,
                            capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def test_eight_bit_y4m_passes_through_a_real_pipe():
    source = y4m_bytes(carphone_frames(6), NTSC)
    output = through_subprocess(source)
    assert output.startswith(b"YUV4MPEG2 W176 H144 F30000:1001 ")  # nothing else on stdout
    (rate_in, fmt_in, frames_in), (rate_out, fmt_out, frames_out) = (y4m_planes(source),
                                                                     y4m_planes(output))
    assert (rate_out, fmt_out, len(frames_out)) == (rate_in, fmt_in, 6) == (NTSC, "yuv420p", 6)
    for got, want in zip(frames_out, frames_in):  # YUV -> 8-bit RGB -> YUV
        difference = got.astype(int) - want
        assert abs(difference.mean()) < 0.2 and np.abs(difference).mean() < 1.0


def test_ten_bit_y4m_keeps_depth_range_and_levels_through_a_real_pipe():
    source = y4m_bytes(ten_bit_ramps(3), Fraction(60000, 1001))
    assert b" C420p10 " in source.split(b"\n")[0]
    output = through_subprocess(source)
    header = output.split(b"\n")[0]
    assert b" C420p10 " in header and b"XCOLORRANGE=LIMITED" in header
    _, fmt_in, frames_in = y4m_planes(source)
    rate, fmt_out, frames_out = y4m_planes(output)
    assert (rate, fmt_out, len(frames_out)) == (Fraction(60000, 1001), fmt_in, 3)
    for got, want in zip(frames_out, frames_in):
        luma = got[:16]
        assert len(np.unique(luma[0])) > 256  # 8 bits would keep at most 220
        np.testing.assert_array_equal(luma, want[:16])


def test_reader_takes_rate_size_depth_and_times_from_the_header():
    data = y4m_bytes(ten_bit_ramps(4), NTSC)
    with Y4MReader(io.BytesIO(data)) as reader:
        assert (reader.width, reader.height, reader.rate) == (512, 16, NTSC)
        assert reader.colour == StreamColour(bit_depth=10)
        assert reader.copied_streams == [] and reader.display_matrix is None
        frames = list(reader.frames(limit=3))
    assert [f.time for f in frames] == [k / NTSC for k in range(3)]
    assert all(f.duration == 1 / NTSC for f in frames)
    assert frames[0].image.dtype == np.uint16 and frames[0].image.shape == (16, 512, 3)


def test_reader_warns_when_the_stream_ends_inside_a_frame(caplog):
    """A 512x16 4:2:0 10-bit frame is 6 + 2 x (512 x 16 + 2 x 256 x 8) = 24,582 bytes: a stream
    1,000 bytes short ends 23,582 bytes into its third frame; one a whole frame short is fine."""
    data = y4m_bytes(ten_bit_ramps(3), NTSC)
    with_parameters = data.replace(b"FRAME\n", b"FRAME Ip\n")   # 3 more bytes a frame
    assert len(with_parameters) == len(data) + 9
    for stream, cut, frames, warnings in (
            (data, 0, 3, []), (data, 24582, 2, []), (with_parameters, 0, 3, []),
            (data, 1000, 2, ["stdin ended inside frame 3 (23582 of its 24582 bytes arrived); "
                             "that frame is left out"]),
            (with_parameters, 1000, 2, ["stdin ended inside frame 3 (23585 of its 24585 bytes "
                                        "arrived); that frame is left out"])):
        caplog.clear()
        with Y4MReader(io.BytesIO(stream[:len(stream) - cut])) as reader:
            assert len(list(reader.frames())) == frames
        assert [record.getMessage() for record in caplog.records] == warnings


def test_reader_rejects_a_stream_that_is_not_y4m():
    with pytest.raises(UserError, match="cannot read stdin as a yuv4mpegpipe stream, which "
                                        "starts with a YUV4MPEG2 header"):
        Y4MReader(io.BytesIO(b"RIFF this is no video"))


def test_writer_warns_for_left_out_streams_and_times_it_cannot_keep(caplog):
    with av.open(str(carphone())) as container:
        stream = container.streams.video[0]  # stands in for a stream the caller would copy
        output = io.BytesIO()
        image = np.zeros((16, 32, 3), np.uint8)
        with Y4MWriter(output, (32, 16), Fraction(25), copy_from=[stream]) as writer:
            for time in (Fraction(0), Fraction(1, 25), Fraction(3, 25)):  # a frame missing
                writer.write(image, time)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "holds video only" in messages[0] and "constant-rate" in messages[1]
    _, pix_fmt, frames = y4m_planes(output.getvalue())
    assert (pix_fmt, len(frames)) == ("yuv420p", 3)


def test_writer_refuses_a_pixel_format_y4m_cannot_hold():
    with pytest.raises(UserError, match="cannot hold nv12"):
        Y4MWriter(io.BytesIO(), (32, 16), Fraction(25), pix_fmt="nv12")
