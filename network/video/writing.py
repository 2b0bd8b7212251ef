"""Writing videos: H.264 at an exact frame rate, copied streams muxed beside it, the file
renamed into place only when complete."""
import logging
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .colour import AVCOL_RANGE_MPEG, COLOUR_CONVERSION, rgb_matrix
from .paths import check_output_path, partial_path

log = logging.getLogger(__name__)

CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}
# Container tags that the muxer writes itself.
MUXER_TAGS = ("major_brand", "minor_version", "compatible_brands", "encoder")


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """[H, W, C] -> [H + H % 2, W + W % 2, C], repeating the last row / column."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


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
        self.path, self.partial = path, partial_path(path)
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
        self._matrix = rgb_matrix(colorspace)
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
