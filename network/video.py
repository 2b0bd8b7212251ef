"""Streaming video and image-sequence input/output (PyAV for video, OpenCV for images).

Conventions:
* Frames are numpy arrays [H, W, 3], uint8, RGB, decoded or encoded one at a time, so
  memory does not grow with the length of a video.
* Frame rates are exact `Fraction`s (30000/1001, never 29.97).
* Output video is H.264 (libx264, yuv420p) at a constant frame rate in an MP4 or MOV
  file: output frame j has pts `first_pts + j` in time base 1 / rate. (Matroska stores
  milliseconds and cannot hold rates such as 60000/1001 exactly, so it is refused.)
* yuv420p needs even sizes: a frame with an odd width or height gets one replicated
  column on the right or row at the bottom.
* Audio and subtitle streams are copied packet by packet: same bytes, same timestamps.
  A stream whose codec the output container cannot hold is left out with a warning.
* The input's display matrix (rotation or flip metadata) is set on the output; frames are
  never rotated themselves, so players show the output as they show the input.
* Every file is written under a temporary name and renamed into place when complete, so
  a failed run never leaves half a file or replaces an existing one.
"""
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from av.video.reformatter import Interpolation

from .runtime import UserError

log = logging.getLogger(__name__)

CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}
COPIED_STREAM_TYPES = ("audio", "subtitle")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Container tags that the muxer writes itself.
MUXER_TAGS = ("major_brand", "minor_version", "compatible_brands", "encoder")
AVCOL_SPC_BT709, AVCOL_SPC_BT2020 = 1, (9, 10)
AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG = 1, 2
# swscale's default fast path darkens a yuv420p -> RGB conversion by about one level;
# accurate rounding with full-resolution chroma is unbiased both ways.
COLOUR_CONVERSION = (Interpolation.BICUBIC | Interpolation.ACCURATE_RND
                     | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP)


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input video before decoding it all."""
    width: int
    height: int
    rate: Fraction  # frames per second, exact
    frame_count: int  # from the container header; 0 when the header does not say
    start_time: float  # seconds, presentation time of the first frame
    display_matrix: tuple[int, ...] | None  # 9 ints in FFmpeg's layout; None: shown as stored
    colour_tags: tuple[int, int, int]  # AVColorSpace, AVColorPrimaries, AVColorTransfer


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


def _rgb_matrix(colorspace: int) -> str:
    """The YUV<->RGB matrix used for a stream tagged `colorspace` (601 when untagged)."""
    if colorspace == AVCOL_SPC_BT709:
        return "ITU709"
    if colorspace in AVCOL_SPC_BT2020:
        return "BT2020"
    return "ITU601"


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """Decoded frame -> [H, W, 3] uint8 RGB, honouring its matrix and range."""
    full_range = frame.color_range == AVCOL_RANGE_JPEG or frame.format.name.startswith("yuvj")
    return frame.to_ndarray(format="rgb24", src_colorspace=_rgb_matrix(frame.colorspace),
                            src_color_range="JPEG" if full_range else "MPEG",
                            interpolation=COLOUR_CONVERSION)


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
        cc = stream.codec_context
        return VideoInfo(width=first.width, height=first.height, rate=Fraction(rate),
                         frame_count=stream.frames, start_time=float(first.time or 0.0),
                         display_matrix=_display_matrix(first),
                         colour_tags=(cc.colorspace, cc.color_primaries, cc.color_trc))


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

    def frames(self, on_packet: Callable[[av.Packet], None] | None = None,
               limit: int | None = None) -> Iterator[np.ndarray]:
        """Yield the video frames as [H, W, 3] uint8 RGB, in display order.

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
                        yield _to_rgb(frame)
        except av.FFmpegError as error:
            raise UserError(f"cannot decode {self.path} ({error.strerror or error})") from None

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """[H, W, C] -> [H + H % 2, W + W % 2, C], repeating the last row / column."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def check_output_path(path: Path, suffixes: Iterable[str]) -> None:
    """UserError unless `path` has one of `suffixes` and its directory exists."""
    suffixes = tuple(suffixes)
    if path.suffix.lower() not in suffixes:
        raise UserError(f"output {path} must end in one of {', '.join(suffixes)}")
    if not path.parent.is_dir():
        raise UserError(f"output directory does not exist: {path.parent}")
    if path.is_dir():
        raise UserError(f"output {path} is a directory")


def _partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


class VideoWriter:
    """Encodes RGB frames to H.264 at an exact, constant frame rate and muxes packets copied
    from other streams next to them; the file appears at `path` only when `close` succeeds.

    size: (width, height) of the frames that will be written.
    rate: output frames per second. start_time: seconds, time of the first frame.
    crf: x264 constant rate factor (0 lossless ... 51 worst; 18 looks lossless to most).
    copy_from: audio/subtitle streams of the input whose packets `copy_packet` receives.
    """

    def __init__(self, path: Path, size: tuple[int, int], rate: Fraction, *,
                 start_time: float = 0.0, crf: int = 18, preset: str = "medium",
                 display_matrix: tuple[int, ...] | None = None,
                 colour_tags: tuple[int, int, int] | None = None,
                 copy_from: Iterable[av.stream.Stream] = (),
                 metadata: dict[str, str] | None = None):
        check_output_path(path, CONTAINER_FORMATS)
        self.path, self.partial = path, _partial_path(path)
        container_format = CONTAINER_FORMATS[path.suffix.lower()]
        self.container = av.open(str(self.partial), "w", format=container_format)
        try:
            self._add_video_stream(size, rate, crf, preset, display_matrix, colour_tags)
            self._copied = self._add_copied_streams(copy_from)
            for key, value in (metadata or {}).items():
                if key not in MUXER_TAGS:
                    self.container.metadata[key] = value
        except BaseException:
            self._discard()
            raise
        self._first_pts = round(start_time * rate)
        self.frames_written = 0

    def _add_video_stream(self, size, rate, crf, preset, display_matrix, colour_tags) -> None:
        self.stream = self.container.add_stream("libx264", rate=rate)
        width, height = size
        self.stream.width, self.stream.height = width + width % 2, height + height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = 1 / rate
        self.stream.options = {"crf": str(crf), "preset": preset}
        self.stream.thread_type = "AUTO"
        colorspace = 2  # unspecified
        if colour_tags is not None:
            cc = self.stream.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc = colour_tags
            colorspace = colour_tags[0]
        self.stream.codec_context.color_range = AVCOL_RANGE_MPEG
        self._matrix = _rgb_matrix(colorspace)
        if display_matrix is not None:
            self.stream.set_display_matrix(display_matrix)

    def _add_copied_streams(self, streams: Iterable[av.stream.Stream]) -> dict:
        supported = self.container.supported_codecs
        copied = {}
        for stream in streams:
            codec = stream.codec_context.name if stream.codec_context else None
            if codec not in supported:
                log.warning("leaving out %s stream #%d (%s): %s files cannot hold it",
                            stream.type, stream.index, codec, self.path.suffix)
                continue
            copied[stream.index] = self.container.add_stream_from_template(stream)
        return copied

    def write(self, frame: np.ndarray) -> None:
        """Encode one [H, W, 3] uint8 RGB frame as the next frame of the video."""
        video_frame = av.VideoFrame.from_ndarray(pad_to_even(np.ascontiguousarray(frame)),
                                                 format="rgb24")
        video_frame = video_frame.reformat(format="yuv420p", dst_colorspace=self._matrix,
                                           dst_color_range="MPEG", interpolation=COLOUR_CONVERSION)
        video_frame.pts = self._first_pts + self.frames_written
        self.container.mux(self.stream.encode(video_frame))
        self.frames_written += 1

    def copy_packet(self, packet: av.Packet, source_index: int) -> None:
        """Mux a packet of the `copy_from` stream with index `source_index` unchanged (bytes
        and timestamps; only its stream changes)."""
        target = self._copied.get(source_index)
        if target is not None:
            packet.stream = target
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder, finish the file and move it to `path`."""
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
        except BaseException:
            self._discard()
            raise
        os.replace(self.partial, self.path)

    def _discard(self) -> None:
        try:
            self.container.close()
        except av.FFmpegError:
            pass  # the partial file is deleted anyway
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()


def list_images(directory: Path) -> list[Path]:
    """The image files of `directory`, sorted by name; UserError if fewer than two."""
    if not directory.is_dir():
        raise UserError(f"frames directory not found: {directory}")
    images = sorted(p for p in directory.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if len(images) < 2:
        raise UserError(f"{directory} holds {len(images)} image(s) "
                        f"({', '.join(IMAGE_SUFFIXES)}); interpolation needs at least 2")
    return images


def read_image(path: Path) -> np.ndarray:
    """An image file as [H, W] grey, [H, W, 3] RGB or [H, W, 4] RGBA; uint8 or uint16 as stored."""
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"cannot read {path} as an image")
    if image.dtype not in (np.uint8, np.uint16):
        raise UserError(f"{path}: {image.dtype} images are not supported (8- or 16-bit only)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        to_rgb = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, to_rgb)
    return image


def write_image(path: Path, image: np.ndarray) -> None:
    """Save [H, W] / [H, W, 3] RGB / [H, W, 4] RGBA (uint8 or uint16) atomically.

    Formats without 16-bit or alpha support (JPEG, BMP, WebP) get 8 bits and no alpha.
    """
    check_output_path(path, IMAGE_SUFFIXES)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".tif", ".tiff"):
        if image.dtype == np.uint16:
            image = np.round(image / 257.0).astype(np.uint8)
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
    if image.ndim == 3:
        to_bgr = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(image, to_bgr)
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise UserError(f"cannot encode an image as {suffix}")
    partial = _partial_path(path)
    partial.write_bytes(encoded.tobytes())
    os.replace(partial, path)
