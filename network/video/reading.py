"""Reading videos: probing the header and first frames, decoding RGB frames and handing out
the packets of the streams that are copied (audio, subtitles)."""
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

from ..runtime import UserError
from .colour import StreamColour, frame_to_rgb

COPIED_STREAM_TYPES = ("audio", "subtitle")


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input video before decoding it all."""
    width: int
    height: int
    rate: Fraction  # frames per second, exact
    frame_count: int  # from the container header; 0 when the header does not say
    start_time: float  # seconds, presentation time of the first frame
    display_matrix: tuple[int, ...] | None  # 9 ints in FFmpeg's layout; None: shown as stored
    colour: StreamColour  # matrix, range, tags and bit depth of the first frame


class TimedFrame(NamedTuple):
    """A decoded frame and the moment it is shown."""
    image: np.ndarray  # [H, W, 3] RGB: uint8, or uint16 on the full 0..65535 scale (> 8-bit)
    time: Fraction  # presentation time in seconds, exact: pts * time_base of the stream


def _open_input(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise UserError(f"input video not found: {path}")
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise UserError(f"cannot read {path} as a video ({error.strerror or error})") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path} has no video stream")
    return container


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    for side_data in frame.side_data:
        if side_data.type == SideDataType.DISPLAYMATRIX:
            return tuple(int(v) for v in np.frombuffer(bytes(side_data), dtype=np.int32))
    return None


def probe_video(path: Path) -> VideoInfo:
    """Read the header and decode the first two frames; UserError unless `path` is a
    video with at least two frames and a known frame rate."""
    with _open_input(path) as container:
        stream = container.streams.video[0]
        rate = stream.guessed_rate or stream.average_rate
        if not rate:
            raise UserError(f"{path}: the frame rate of the video stream is unknown")
        first, count = None, 0
        try:
            for frame in container.decode(stream):
                if first is None:
                    first = frame
                count += 1
                if count == 2:
                    break
        except av.FFmpegError as error:
            raise UserError(f"cannot decode {path} ({error.strerror or error})") from None
        if count < 2:
            raise UserError(f"{path} has {count} video frame(s); interpolation needs at least 2")
        return VideoInfo(width=first.width, height=first.height, rate=Fraction(rate),
                         frame_count=stream.frames, start_time=float(first.time or 0.0),
                         display_matrix=_display_matrix(first),
                         colour=StreamColour.of_frame(first))


def _packet_time(packet: av.Packet) -> float | None:
    """Start of a packet in seconds (pts, else dts), None when it has no timestamp."""
    stamp = packet.pts if packet.pts is not None else packet.dts
    return None if stamp is None else float(stamp * packet.time_base)


class VideoReader:
    """Decodes the first video stream of a file and hands out the packets of its audio and
    subtitle streams, in one pass over the file."""

    def __init__(self, path: Path):
        self.path = path
        self.container = _open_input(path)
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.copied_streams = [s for s in self.container.streams if s.type in COPIED_STREAM_TYPES]
        self._last_time: Fraction | None = None

    def frames(self, on_packet: Callable[[av.Packet], None] | None = None,
               limit: int | None = None) -> Iterator[TimedFrame]:
        """Yield the video frames with their presentation times, in display order.

        on_packet: receives every audio/subtitle packet as it is demuxed.
        limit: stop after this many frames; packets of the copied streams that start at or
        after the end of the last frame are then left out.
        """
        end_time = None
        if limit is not None:
            start = self.video.start_time
            start = 0.0 if start is None else float(start * self.video.time_base)
            end_time = start + float(limit / (self.video.guessed_rate or self.video.average_rate))
        yielded = 0
        try:
            for packet in self.container.demux(self.video, *self.copied_streams):
                if packet.stream.type != "video":
                    time = _packet_time(packet)
                    if on_packet and packet.size and (end_time is None or time is None
                                                       or time < end_time):
                        on_packet(packet)
                    continue
                if end_time is not None and yielded >= limit:
                    if (_packet_time(packet) or 0.0) > end_time + 1.0:
                        break  # the copied streams are past the end as well
                    continue
                for frame in self.video.decode(packet):
                    if end_time is None or yielded < limit:
                        yielded += 1
                        yield TimedFrame(frame_to_rgb(frame), self._time(frame))
        except av.FFmpegError as error:
            raise UserError(f"cannot decode {self.path} ({error.strerror or error})") from None

    def _time(self, frame: av.VideoFrame) -> Fraction:
        """Exact presentation time of a decoded frame (pts, else dts, else one frame after
        the previous frame)."""
        stamp = frame.pts if frame.pts is not None else frame.dts
        if stamp is not None:
            self._last_time = Fraction(stamp) * self.video.time_base
        elif self._last_time is None:
            self._last_time = Fraction(0)
        else:
            self._last_time += 1 / Fraction(self.video.guessed_rate or self.video.average_rate)
        return self._last_time

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
