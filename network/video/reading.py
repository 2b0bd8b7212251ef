"""Reading videos: probing the header and first frames, decoding RGB frames and handing out
the packets of the streams that are copied (audio, subtitles)."""
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

from ..runtime import UserError
from .colour import StreamColour, frame_to_rgb

log = logging.getLogger(__name__)

COPIED_STREAM_TYPES = ("audio", "subtitle")


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input video before decoding it all."""
    width: int
    height: int
    rate: Fraction  # nominal frames per second, exact (the true times are in TimedFrame)
    frame_count: int  # from the container header; 0 when the header does not say
    time_base: Fraction  # seconds per tick of the video timestamps
    video_start: Fraction  # seconds, time of the first good video frame
    display_matrix: tuple[int, ...] | None  # 9 ints in FFmpeg's layout; None: shown as stored
    pixel_aspect: Fraction | None  # width / height of a pixel (anamorphic video); None: square
    colour: StreamColour  # matrix, range, tags and bit depth of the first frame


class TimedFrame(NamedTuple):
    """A decoded frame and the moment it is shown."""
    image: np.ndarray  # [H, W, 3] RGB: uint8, or uint16 on the full 0..65535 scale (> 8-bit)
    time: Fraction  # presentation time in seconds, exact: pts * time_base of the stream, or the
    # nominal frame grid's time where that is within half a tick (VideoReader._on_grid)
    duration: Fraction | None = None  # seconds it is shown, when the container says


def _open_input(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise UserError(f"input video {path} is a directory" if path.is_dir()
                        else f"input video not found: {path}")
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


def pixel_aspect(ratio: Fraction | None) -> Fraction | None:
    """A sample aspect ratio as FFmpeg reports it -> None when square or unknown (0, 1, None)."""
    return None if not ratio or ratio == 1 else Fraction(ratio)


def probe_video(path: str | Path) -> VideoInfo:
    """Read the header and decode the first two good frames; UserError unless `path` is a
    video with at least two decodable frames and a known frame rate."""
    with VideoReader(path, warn=False) as reader:
        stream = reader.video
        first, count = None, 0
        for frame in reader.frames():
            first = first or frame
            count += 1
            if count == 2:
                break
        if count == 0:
            raise UserError(f"{path}: no decodable video frame")
        if count < 2:
            raise UserError(f"{path} has 1 video frame; interpolation needs at least 2")
        return VideoInfo(width=first.image.shape[1], height=first.image.shape[0],
                         rate=reader.rate, frame_count=stream.frames,
                         time_base=Fraction(stream.time_base), video_start=first.time,
                         display_matrix=reader.display_matrix,
                         pixel_aspect=reader.pixel_aspect, colour=reader.colour)


def timeline_start(video_start: Fraction, streams: Iterable[av.stream.Stream]) -> Fraction:
    """Seconds: the earliest start of the video (`video_start`) and of `streams` (the copied
    streams an output keeps), where an output's timeline begins."""
    return min([video_start] + [Fraction(s.start_time) * s.time_base for s in streams
                                if s.start_time is not None])


def _packet_time(packet: av.Packet) -> Fraction | None:
    """Start of a packet in seconds (pts, else dts), None when it has no timestamp."""
    stamp = packet.pts if packet.pts is not None else packet.dts
    return None if stamp is None else Fraction(stamp) * packet.time_base


def _seconds(time: Fraction | None) -> str:
    return "an unknown time" if time is None else f"{float(time):.3f} s"


class VideoReader:
    """Decodes the first video stream of a file and hands out the packets of its audio and
    subtitle streams, in one pass over the file.

    Damaged input: a video packet the decoder rejects, a frame it marks corrupt and a frame
    whose time does not come after the previous frame's are left out with one warning each
    (giving the time), so the frames on either side become neighbours.
    warn: False leaves those warnings out (for a second pass over the same frames).
    """

    def __init__(self, path: str | Path, warn: bool = True):
        self.path, self.warn = Path(path), warn
        self.container = _open_input(self.path)
        self.video = self.container.streams.video[0]
        # Slice threads only: with frame threads the decoder reports an error packets later,
        # at the wrong time. (Decoding runs in a thread of its own beside the network.)
        self.video.thread_type = "SLICE"
        rate = self.video.guessed_rate or self.video.average_rate
        if not rate:
            self.container.close()
            raise UserError(f"{path}: the frame rate of the video stream is unknown")
        self.rate = Fraction(rate)  # nominal frames per second
        self.copied_streams = [s for s in self.container.streams if s.type in COPIED_STREAM_TYPES]
        self.pixel_aspect = pixel_aspect(self.video.sample_aspect_ratio)
        self.display_matrix: tuple[int, ...] | None = None  # of the first frame, once decoded
        self.colour: StreamColour | None = None  # of the first frame, once decoded
        self._last_time: Fraction | None = None
        self._origin: Fraction | None = None  # time of the first good frame: the grid's start
        self._use_dts = False  # time frames by decoding stamps (`_check_stamps`)

    def _warn(self, message: str, *args) -> None:
        if self.warn:
            log.warning("%s: " + message, self.path.name, *args)

    def _decode_packet(self, packet: av.Packet) -> list[av.VideoFrame]:
        """The frames that one video packet completes, in display order."""
        try:
            return self.video.decode(packet)
        except av.FFmpegError as error:
            self._warn("skipped a video packet the decoder rejects at %s (%s)",
                       _seconds(_packet_time(packet)), error.strerror or error)
            return []

    def _check_stamps(self, frame: av.VideoFrame, after: av.VideoFrame) -> None:
        """Switch to decoding times for good when `after`, the frame shown next, has a
        presentation stamp no later than `frame`'s while its decoding stamp is later: AVI files
        with packed B-frames (DivX, Xvid) label decoded frames with the wrong presentation
        stamps, in decoding order, but their decoding stamps count the frames as shown."""
        if (not self._use_dts and None not in (frame.pts, after.pts, frame.dts, after.dts)
                and after.pts <= frame.pts and after.dts > frame.dts):
            self._use_dts = True
            log.info("%s: presentation stamps out of order; timing frames by decoding stamps",
                     self.path.name)

    def _accept(self, frame: av.VideoFrame) -> TimedFrame | None:
        """`frame` as a TimedFrame; None when it is damaged or not after the previous good
        frame."""
        stamp_time = self._time(frame)
        time = self._on_grid(stamp_time, self.video.time_base / 2)
        if frame.is_corrupt:
            self._warn("skipped a damaged video frame at %s", _seconds(time))
            return None
        if self._last_time is not None and time <= self._last_time:
            self._warn("skipped a video frame at %s: not after the previous frame (%s)",
                       _seconds(time), _seconds(self._last_time))
            return None
        if self.colour is None:
            self.colour = StreamColour.of_frame(frame)
            self.display_matrix = _display_matrix(frame)
            self._origin = time
        self._last_time = time
        duration = None
        if frame.duration:
            # start and duration are rounded each: the end may be off by a whole tick
            end = stamp_time + frame.duration * self.video.time_base
            duration = self._on_grid(end, self.video.time_base) - time
        return TimedFrame(frame_to_rgb(frame), time, duration)

    def frames(self, on_packet: Callable[[av.Packet], None] | None = None,
               limit: int | None = None) -> Iterator[TimedFrame]:
        """Yield the good video frames with their presentation times, in display order.

        on_packet: receives every audio/subtitle packet, in demuxing order.
        limit: stop after this many frames; packets of the copied streams that start at or
        after the end of the last frame (its time plus its duration: its own, else the
        interval before it, else 1 / rate) are left out.
        """
        held = None        # each decoded frame waits for the next, to check their stamps
        pending = []       # with a limit: packets that may start after the last frame's end
        last, before, end_time = None, None, None
        yielded = 0

        def hand_out(packets, until):
            """Pass on the packets that start before `until` (all: None); return the rest."""
            kept = []
            for packet in packets:
                time = _packet_time(packet)
                if until is None or time is None or time < until:
                    on_packet(packet)
                else:
                    kept.append(packet)
            return kept

        try:
            for packet in self.container.demux(self.video, *self.copied_streams):
                if packet.stream.type != "video":
                    if on_packet and packet.size:
                        if limit is None or end_time is not None:
                            hand_out([packet], end_time)
                        else:
                            pending.append(packet)
                    continue
                if end_time is not None:
                    if (_packet_time(packet) or 0) > end_time + 1:
                        break  # the copied streams are past the end as well
                    continue
                for frame in self._decode_packet(packet):
                    if held is not None:
                        self._check_stamps(held, frame)
                        good = self._accept(held)
                        if good is not None:
                            yielded, last, before = yielded + 1, good, last
                            yield good
                    held = frame
                    if limit is not None and yielded >= limit:
                        held = None
                        end_time = last.time + (last.duration or (
                            last.time - before.time if before else 1 / self.rate))
                        pending = hand_out(pending, end_time)
                        break
                    if pending and last is not None:
                        pending = hand_out(pending, last.time)
            good = None if held is None else self._accept(held)
            if good is not None:
                yield good
        except av.FFmpegError as error:
            raise UserError(f"cannot read {self.path} ({error.strerror or error})") from None
        if on_packet and end_time is None:
            hand_out(pending, None)

    def _time(self, frame: av.VideoFrame) -> Fraction:
        """Exact presentation time of a decoded frame (pts, else dts, else one nominal frame
        after the previous good frame; dts alone once `_check_stamps` has found the pts out of
        order: the decoder's last frames carry no dts but a pts of the wrong frame)."""
        stamps = (frame.dts,) if self._use_dts else (frame.pts, frame.dts)
        stamp = next((s for s in stamps if s is not None), None)
        if stamp is not None:
            return Fraction(stamp) * self.video.time_base
        return Fraction(0) if self._last_time is None else self._last_time + 1 / self.rate

    def _on_grid(self, time: Fraction, tolerance: Fraction) -> Fraction:
        """`time` moved onto the nominal grid (the first frame's time + k / rate; for the first
        frame, k / rate) when it is within `tolerance` of it, so that a constant-rate video in
        a container of coarse ticks keeps its exact rate (Matroska stores whole milliseconds:
        1/30 s as 33 ms, 2/30 s as 67); other times, and a move that would not come after the
        previous frame, stay."""
        origin = self._origin if self._origin is not None else Fraction(0)   # first: k / rate
        slot = origin + Fraction(round((time - origin) * self.rate)) / self.rate
        near = abs(time - slot) <= tolerance
        return slot if near and (self._last_time is None or slot > self._last_time) else time

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
