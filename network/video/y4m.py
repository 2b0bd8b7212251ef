"""yuv4mpegpipe streams on pipes (stdin, stdout), for ffmpeg and VapourSynth pipelines.

A y4m stream is raw YUV frames behind a one-line header (size, exact rate, chroma layout and
depth, e.g. C420p10, and FFmpeg's XCOLORRANGE). It has no timestamps, no matrix tag and no
audio: frame k is shown at k / rate, both directions convert with the untagged default
(BT.601) so pixels round-trip, and streams other than the video are left out with a warning.
Nothing is ever written to the stream but the video itself.
"""
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np

from ..runtime import UserError
from .colour import (AVCOL_RANGE_JPEG, AVCOL_RANGE_MPEG, StreamColour, format_depth,
                     frame_to_rgb, rgb_to_frame)
from .reading import TimedFrame, pixel_aspect

log = logging.getLogger(__name__)

Y4M_FORMAT = "yuv4mpegpipe"
# FFmpeg calls every depth above 8 bits non-standard y4m, but writes and reads it (C420p10 ...).
ALLOW_DEEP = {"strict": "-1"}
# What a y4m stream to stdout meets when the program reading it exits early.
PIPE_CLOSED = "the program reading the y4m stream closed it before the end (broken pipe)"


class CountedStream:
    """A read-only view of a binary stream that counts the bytes read and keeps its first two
    lines (the y4m header and the first frame's), so that a stream ending inside a frame can be
    told from one ending after it: FFmpeg's demuxer drops a partial last frame without a
    word."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.bytes_read = 0
        self.start = b""

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if self.start.count(b"\n") < 2:
            self.start += data[:max(0, 4096 - len(self.start))]
        self.bytes_read += len(data)
        return data

    def line_lengths(self) -> tuple[int, int] | None:
        """Lengths of the stream header and of the first frame header, newlines included
        (`FRAME` and a newline, or longer with parameters; every frame's is taken to be as
        long); None if they were not read."""
        header = self.start.find(b"\n") + 1
        frame = self.start.find(b"\n", header) + 1
        return None if header == 0 or frame == 0 else (header, frame - header)


def frame_bytes(pix_fmt: str, width: int, height: int) -> int:
    """Bytes of one planar frame of `pix_fmt` as y4m stores it (no padding)."""
    components = av.VideoFormat(pix_fmt, width, height).components
    return sum(c.width * c.height * (2 if c.bits > 8 else 1) for c in components)


class Y4MReader:
    """Decodes a y4m stream from a binary file object (e.g. sys.stdin.buffer) as TimedFrames:
    frame k at exactly k / rate seconds; rate, size and depth come from the header.

    Has the interface of `VideoReader`: `frames`, `rate`, `colour`, `pixel_aspect` (the
    header's A field), `display_matrix` (None),
    `copied_streams` (always empty), `close` and use as a context manager.
    """

    def __init__(self, stream: BinaryIO, name: str = "stdin"):
        self.name = name
        self.stream = CountedStream(stream)
        try:
            self.container = av.open(self.stream, "r", format=Y4M_FORMAT)
        except av.FFmpegError as error:
            raise UserError(f"cannot read {name} as a yuv4mpegpipe stream, which starts with "
                            "a YUV4MPEG2 header (e.g. from ffmpeg -i IN -f yuv4mpegpipe -; "
                            f"FFmpeg says: {error.strerror or error})") from None
        self.video = self.container.streams.video[0]
        cc = self.video.codec_context
        self.width, self.height = cc.width, cc.height
        self.rate = Fraction(self.video.average_rate)
        self.colour = StreamColour(full_range=cc.color_range == AVCOL_RANGE_JPEG,
                                   bit_depth=format_depth(cc.pix_fmt))
        self.display_matrix = None
        self.pixel_aspect = pixel_aspect(cc.sample_aspect_ratio)
        self.copied_streams: list[av.stream.Stream] = []

    def frames(self, on_packet: Callable[[av.Packet], None] | None = None,
               limit: int | None = None) -> Iterator[TimedFrame]:
        """Yield the frames as [H, W, 3] RGB (uint8, or uint16 above 8 bits) with their times
        and durations (1 / rate).

        on_packet: never called (y4m holds video only); limit: stop after this many frames.
        A stream that ends inside a frame is logged as a warning (that frame is left out).
        """
        frames = 0
        try:
            for frame in self.container.decode(self.video):
                if limit is not None and frames >= limit:
                    return
                yield TimedFrame(frame_to_rgb(frame), frames / self.rate, 1 / self.rate)
                frames += 1
        except av.FFmpegError as error:
            raise UserError(f"cannot decode {self.name} as yuv4mpegpipe "
                            f"({error.strerror or error})") from None
        self._warn_if_cut(frames)

    def _warn_if_cut(self, frames: int) -> None:
        """Warn when the stream held bytes after its last whole frame."""
        lines = self.stream.line_lengths()
        if lines is None:
            return
        header, frame_header = lines
        size = frame_header + frame_bytes(self.video.codec_context.pix_fmt, self.width,
                                          self.height)
        left = self.stream.bytes_read - header - frames * size
        if 0 < left < size:
            log.warning("%s ended inside frame %d (%d of its %d bytes arrived); that frame is "
                        "left out", self.name, frames + 1, left, size)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "Y4MReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Y4MWriter:
    """Writes RGB frames as a y4m stream to a binary file object (e.g. sys.stdout.buffer),
    which it flushes but never closes.

    size: (width, height); rate: frames per second written into the header.
    pix_fmt: y4m layout (default 4:2:0 at the depth of `colour`: yuv420p, yuv420p10le, ...).
    colour: range (written as XCOLORRANGE) and depth; its matrix is ignored (see module).
    copy_from: streams the caller would copy; each is left out with a warning.
    """

    def __init__(self, stream: BinaryIO, size: tuple[int, int], rate: Fraction, *,
                 pix_fmt: str | None = None, colour: StreamColour | None = None,
                 copy_from: Iterable[av.stream.Stream] = ()):
        depth_colour = colour or StreamColour()
        self.colour = StreamColour(full_range=depth_colour.full_range,
                                   bit_depth=depth_colour.bit_depth)
        depth = self.colour.bit_depth
        self.pix_fmt = pix_fmt or ("yuv420p" if depth <= 8 else f"yuv420p{depth}le")
        self.rate = Fraction(rate)
        self.output = stream
        for copied in copy_from:
            log.warning("leaving out %s stream #%d: a y4m stream holds video only",
                        copied.type, copied.index)
        self.container = av.open(stream, "w", format=Y4M_FORMAT, options=ALLOW_DEEP)
        self.stream = self.container.add_stream("wrapped_avframe", rate=self.rate)
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = self.pix_fmt
        self.stream.codec_context.color_range = (AVCOL_RANGE_JPEG if self.colour.full_range
                                                 else AVCOL_RANGE_MPEG)
        try:
            self.container.start_encoding()  # writes the header; checks the pixel format
        except av.FFmpegError:
            self.container.close()
            raise UserError(f"a y4m stream cannot hold {self.pix_fmt} (try yuv420p, "
                            "yuv422p, yuv444p or their 10/12/16-bit forms)") from None
        self.frames_written = 0
        self._first_time: Fraction | None = None
        self._warned_vfr = False

    def write(self, image: np.ndarray, time: Fraction | None = None) -> None:
        """Write one [H, W, 3] uint8 or uint16 RGB frame. y4m is constant-rate: frame k is
        shown at k / rate; a `time` half a frame or more away from that gets one warning."""
        if time is not None:
            self._check_time(Fraction(time))
        frame = rgb_to_frame(image, self.pix_fmt, self.colour)
        frame.pts = self.frames_written
        try:
            self.container.mux(self.stream.encode(frame))
        except BrokenPipeError:
            raise UserError(PIPE_CLOSED) from None
        except av.FFmpegError as error:
            raise UserError(f"cannot write the y4m stream ({error.strerror or error})") from None
        self.frames_written += 1

    def _check_time(self, time: Fraction) -> None:
        if self._first_time is None:
            self._first_time = time
        slot = self._first_time + self.frames_written / self.rate
        if abs(time - slot) * self.rate >= Fraction(1, 2) and not self._warned_vfr:
            self._warned_vfr = True
            log.warning("y4m output is constant-rate: a frame meant for %.3f s is shown at "
                        "%.3f s (later frames may shift too)", float(time - self._first_time),
                        float(slot - self._first_time))

    def ends_at(self, time: Fraction) -> None:
        """Nothing to do: in y4m every frame lasts 1 / rate."""

    def copy_packet(self, packet: av.Packet, source_index: int) -> None:
        """Nothing to do: y4m holds video only (the streams were named in a warning)."""

    def close(self) -> None:
        """Finish the stream and flush the file object (left open)."""
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
            self.output.flush()
        except BrokenPipeError:
            raise UserError(PIPE_CLOSED) from None

    def __enter__(self) -> "Y4MWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:   # the error in flight is the one to report, not a closed pipe's on the way out
            with contextlib.suppress(av.FFmpegError, OSError):
                self.container.close()
