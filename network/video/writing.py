"""Writing videos: RGB frames encoded at exact timestamps in the chosen codec and depth, copied
streams muxed beside them, the file renamed into place only when complete."""
import functools
import io
import logging
import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..runtime import UserError
from .colour import AVCOL_RANGE_JPEG, AVCOL_RANGE_MPEG, StreamColour, format_depth, rgb_to_frame
from .paths import check_output_path, partial_path
from .timeline import parse_rate

log = logging.getLogger(__name__)

CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
                     ".webm": "webm"}
# Codec (FFmpeg's name, also what containers list as supported) -> the encoder used.
ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1", "vp9": "libvpx-vp9",
            "ffv1": "ffv1", "prores": "prores_ks"}
# Container tags that the muxer writes itself.
MUXER_TAGS = ("major_brand", "minor_version", "compatible_brands", "encoder")
# Stream tags that describe the input's encoding or that muxers write themselves (Matroska's
# statistics, MP4's handler), compared in lower case; a stream's other tags (language, title)
# are copied.
STREAM_MUXER_TAGS = ("duration", "number_of_frames", "number_of_bytes", "bps", "encoder",
                     "handler_name", "vendor_id", "_statistics_writing_app",
                     "_statistics_writing_date_utc", "_statistics_tags")
AVCOL_TRC_HDR = (16, 18)  # SMPTE 2084 (PQ), ARIB STD-B67 (HLG)
# Constant rate factor when none is given: looks lossless in H.264/HEVC (on the 0-51 scale).
DEFAULT_CRF = 18


def copy_description(source: av.stream.Stream, target: av.stream.Stream) -> None:
    """Give `target` the tags (language, title, ...) and disposition (default, forced,
    ...) of `source`, leaving out the tags in STREAM_MUXER_TAGS."""
    for key, value in source.metadata.items():
        if key.lower() not in STREAM_MUXER_TAGS:
            target.metadata[key] = value
    target.disposition = source.disposition


def chroma_subsampling(pix_fmt: str) -> tuple[int, int]:
    """(horizontal, vertical) chroma subsampling of a pixel format: (2, 2) for 4:2:0, (2, 1)
    for 4:2:2, (1, 1) for 4:4:4, RGB and grey."""
    components = av.VideoFormat(pix_fmt, 2, 2).components
    if len(components) < 3:
        return 1, 1
    return 2 // components[1].width, 2 // components[1].height


def pad_to_even(frame: np.ndarray, columns: bool = True, rows: bool = True) -> np.ndarray:
    """[H, W, C] -> [H + H % 2, W + W % 2, C] (only where `rows` / `columns`), repeating the
    last row / column."""
    height, width = frame.shape[:2]
    extra_rows, extra_columns = height % 2 * rows, width % 2 * columns
    if not (extra_rows or extra_columns):
        return frame
    return np.pad(frame, ((0, extra_rows), (0, extra_columns), (0, 0)), mode="edge")


def nearest(ticks: Fraction) -> int:
    """Round half up, as FFmpeg rescales timestamps."""
    return math.floor(ticks + Fraction(1, 2))


def default_codec(container_format: str, bit_depth: int) -> str:
    """H.264 up to 10 bits, HEVC above; in WebM, VP9 for 8 bits and AV1 above (this
    build's VP9 encoder is 8-bit only)."""
    if container_format == "webm":
        return "vp9" if bit_depth <= 8 else "av1"
    return "h264" if bit_depth <= 10 else "hevc"


def default_pix_fmt(codec: str, bit_depth: int) -> str:
    """The first of 4:2:0, 4:2:2, 4:4:4 YUV that the codec's encoder takes at `bit_depth`,
    else at the next depth it takes (ProRes: 8-bit input is written at 10 bits)."""
    supported = [f.name for f in av.Codec(ENCODERS[codec], "w").video_formats]
    for depth in sorted({bit_depth, 10, 12, 16}):
        suffix = "" if depth <= 8 else f"{depth}le"
        for chroma in ("420", "422", "444"):
            if depth >= bit_depth and f"yuv{chroma}p{suffix}" in supported:
                return f"yuv{chroma}p{suffix}"
    raise UserError(f"the {codec} encoder cannot write {bit_depth}-bit YUV; choose another "
                    f"codec or a pixel format ({', '.join(supported)})")


def choose_encoding(path: Path, codec: str | None, pix_fmt: str | None,
                    bit_depth: int) -> tuple[str, str]:
    """The codec and pixel format that a `VideoWriter` to `path` (a checked output path) uses
    for video of `bit_depth` bits (defaults: `default_codec`, `default_pix_fmt`); UserError when
    the encoder or the container cannot take them."""
    container_format = CONTAINER_FORMATS[path.suffix.lower()]
    codec = codec or default_codec(container_format, bit_depth)
    if codec not in ENCODERS:
        raise UserError(f"unknown codec {codec}; choose one of {', '.join(ENCODERS)}")
    pix_fmt = pix_fmt or default_pix_fmt(codec, bit_depth)
    supported = [f.name for f in av.Codec(ENCODERS[codec], "w").video_formats]
    if pix_fmt not in supported:
        raise UserError(f"the {codec} encoder takes {', '.join(supported)}; not {pix_fmt}")
    if codec not in supported_codecs(container_format):
        raise UserError(f"{path.suffix} files cannot hold {codec} video")
    return codec, pix_fmt


@functools.cache
def supported_codecs(container_format: str) -> frozenset[str]:
    """The codecs FFmpeg's muxer of `container_format` ("mp4", "matroska", ...) can hold."""
    with av.open(io.BytesIO(), "w", format=container_format) as container:
        return frozenset(container.supported_codecs)


def streams_kept(path: Path, streams: Iterable[av.stream.Stream]) -> list[av.stream.Stream]:
    """The `streams` whose codecs a file of `path`'s container can hold (a `VideoWriter` to
    `path` copies these and leaves the others out with a warning)."""
    supported = supported_codecs(CONTAINER_FORMATS[path.suffix.lower()])
    return [stream for stream in streams
            if stream.codec_context and stream.codec_context.name in supported]


def encoder_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    """Constant-quality settings: crf for the x264/x265 (0..51) and SVT-AV1/VP9 (0..63)
    encoders, x264/x265 `preset`; FFV1 is lossless and ProRes picks its profile from the
    pixel format, so they take neither."""
    if codec in ("h264", "hevc"):
        options = {"crf": str(crf), "preset": preset}
        if codec == "hevc":
            options["x265-params"] = "log-level=error"
        return options
    if codec == "av1":
        return {"crf": str(max(crf, 1))}  # SVT-AV1 reads 0 as "unset"
    if codec == "vp9":
        return {"crf": str(crf), "b": "0", "row-mt": "1"}  # b 0: quality, not bitrate, rules
    return {}


class VideoWriter:
    """Encodes RGB frames at exact timestamps and muxes packets copied from other streams
    next to them; the file appears at `path` only when `close` succeeds.

    size: (width, height) of the frames that will be written.
    rate: nominal output frames per second; `write` without a time places frame k at k / rate.
    time_base: of the video timestamps (default 1 / rate); variable-rate outputs pass one
        that holds every frame time exactly. Matroska stores milliseconds: each timestamp is
        rounded there once, from its exact value.
    time_offset: seconds subtracted from every video time and every copied packet.
    codec: one of ENCODERS (default: `default_codec`); pix_fmt: the encoded pixel format
        (default: `default_pix_fmt` at the depth of `colour`).
    colour: matrix, range and tags to encode with (default: untagged 8-bit BT.601 limited).
    crf, preset: see `encoder_options`.
    display_matrix: rotation/flip metadata to set (9 ints in FFmpeg's layout).
    pixel_aspect: width / height of a pixel, for anamorphic video (MP4, MOV and Matroska hold
        it; WebM's encoders and y4m drop it); default square.
    video_from: the input's video stream, whose tags (language, title) and disposition the
        output's video stream takes, as every copied stream takes its own.
    copy_from: audio/subtitle streams of the input whose packets `copy_packet` receives;
        a stream the container cannot hold is left out with a warning.

    Each frame lasts until the next one; the last one until the time given to `ends_at`
    (else 1 / rate), so that a variable-rate output lasts as long as its input. Encoding
    therefore runs one frame behind `write`.
    """

    def __init__(self, path: str | Path, size: tuple[int, int], rate: Fraction | float | str, *,
                 time_base: Fraction | None = None,
                 time_offset: Fraction = Fraction(0), codec: str | None = None,
                 pix_fmt: str | None = None, colour: StreamColour | None = None,
                 crf: int = DEFAULT_CRF, preset: str = "medium",
                 display_matrix: tuple[int, ...] | None = None,
                 pixel_aspect: Fraction | None = None,
                 video_from: av.stream.Stream | None = None,
                 copy_from: Iterable[av.stream.Stream] = (),
                 metadata: dict[str, str] | None = None):
        path, rate = Path(path), parse_rate(rate)
        check_output_path(path, CONTAINER_FORMATS)
        container_format = CONTAINER_FORMATS[path.suffix.lower()]
        self.colour = colour or StreamColour()
        codec, self.pix_fmt = choose_encoding(path, codec, pix_fmt, self.colour.bit_depth)
        if self.colour.transfer in AVCOL_TRC_HDR and format_depth(self.pix_fmt) <= 8:
            log.warning("writing HDR (PQ/HLG) video at 8 bits: expect visible banding")
        self.path, self.partial = path, partial_path(path)
        self.rate, self.size = rate, tuple(size)
        self.time_base = Fraction(time_base) if time_base else 1 / self.rate
        self.time_offset = Fraction(time_offset)
        self.container = av.open(str(self.partial), "w", format=container_format)
        try:
            self._add_video_stream(codec, size, crf, preset, display_matrix, container_format)
            if pixel_aspect:
                self.stream.codec_context.sample_aspect_ratio = pixel_aspect
            if video_from is not None:
                copy_description(video_from, self.stream)
            self._copied = self._add_copied_streams(copy_from)
            if container_format in ("mp4", "mov"):
                self._exact_edit_lists()
            for key, value in (metadata or {}).items():
                if key not in MUXER_TAGS:
                    self.container.metadata[key] = value
            self.container.start_encoding()   # opens the file: an unwritable place fails here
        except av.FFmpegError as error:
            self._discard()
            raise UserError(f"cannot write {path} ({error.strerror or error})") from None
        except BaseException:
            self._discard()
            raise
        self.frames_written = 0
        self._last_pts: int | None = None
        self._held: av.VideoFrame | None = None     # the last frame written, not yet encoded
        self._durations: dict[int, int] = {}        # pts -> duration, both in time_base ticks
        self._end_pts: int | None = None

    def _add_video_stream(self, codec, size, crf, preset, display_matrix, container_format):
        if codec == "av1":   # SVT-AV1 prints its settings on stderr unless told errors only
            os.environ.setdefault("SVT_LOG", "1")
        self.stream = self.container.add_stream(ENCODERS[codec], rate=self.rate)
        width, height = size
        # subsampled chroma needs an even size: an odd one gets a repeated column or row
        self._even_columns, self._even_rows = (
            step == 2 for step in chroma_subsampling(self.pix_fmt))
        self.stream.width = width + width % 2 * self._even_columns
        self.stream.height = height + height % 2 * self._even_rows
        self.stream.pix_fmt = self.pix_fmt
        self.stream.codec_context.time_base = self.time_base
        self.stream.time_base = self.time_base
        self.stream.options = encoder_options(codec, crf, preset)
        self.stream.thread_type = "AUTO"
        if codec == "hevc" and container_format in ("mp4", "mov"):
            self.stream.codec_tag = "hvc1"  # the tag Apple's players require
        cc = self.stream.codec_context
        cc.colorspace, cc.color_primaries = self.colour.yuv_matrix, self.colour.primaries
        cc.color_trc = self.colour.transfer
        cc.color_range = AVCOL_RANGE_JPEG if self.colour.full_range else AVCOL_RANGE_MPEG
        if display_matrix is not None:
            self.stream.set_display_matrix(display_matrix)

    def _add_copied_streams(self, streams: Iterable[av.stream.Stream]) -> dict[
            int, tuple[av.stream.Stream, av.stream.Stream]]:
        """{input stream index: (input stream, output stream)} for the streams kept."""
        streams = list(streams)
        kept = streams_kept(self.path, streams)      # as interpolate_video's timeline counts
        copied = {}
        for stream in streams:
            if stream not in kept:
                codec = stream.codec_context.name if stream.codec_context else None
                log.warning("leaving out %s stream #%d (%s): %s files cannot hold it",
                            stream.type, stream.index, codec, self.path.suffix)
                continue
            copied[stream.index] = (stream, self.container.add_stream_from_template(stream))
            copy_description(stream, copied[stream.index][1])
        return copied

    def _exact_edit_lists(self) -> None:
        """MP4/MOV store where a stream starts (its edit list) in the movie timescale, 1 ms by
        default; use a multiple of it that holds every stream's ticks exactly when it fits
        in 31 bits."""
        denominators = [1000, self.time_base.denominator]
        denominators += [source.time_base.denominator for source, _ in self._copied.values()
                         if source.time_base]
        timescale = math.lcm(*denominators)
        if timescale < 2**31:
            self.container.options["movie_timescale"] = str(timescale)

    def write(self, image: np.ndarray, time: Fraction | None = None) -> None:
        """Encode one [H, W, 3] uint8 or uint16 RGB frame shown at `time` seconds (exact; None:
        the next constant-rate slot, frames_written / rate). Times must increase."""
        if image.shape[:2] != (self.size[1], self.size[0]):
            raise ValueError(f"frame of {image.shape[1]}x{image.shape[0]} pixels for a "
                             f"{self.size[0]}x{self.size[1]} stream")
        if time is None:
            time = Fraction(self.frames_written) / self.rate
        pts = nearest((time - self.time_offset) / self.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"frame time {time} s is not after the previous frame's")
        frame = rgb_to_frame(pad_to_even(image, self._even_columns, self._even_rows),
                             self.pix_fmt, self.colour)
        frame.pts, frame.time_base = pts, self.time_base
        if self._held is not None:
            self._encode(self._held, pts - self._held.pts)
        self._held, self._last_pts = frame, pts
        self.frames_written += 1

    def ends_at(self, time: Fraction) -> None:
        """Show the last frame written until `time` seconds (on the same clock as `write`'s
        times)."""
        self._end_pts = nearest((time - self.time_offset) / self.time_base)

    def _encode(self, frame: av.VideoFrame | None, duration: int = 0) -> None:
        """Encode `frame` (None: flush the encoder) and mux what comes out, each packet with
        the duration of its frame (encoders do not pass it on)."""
        if frame is not None:
            self._durations[frame.pts] = duration
        for packet in self.stream.encode(frame):
            if packet.pts is not None:
                packet.duration = self._durations.pop(packet.pts, packet.duration)
            self.container.mux(packet)

    def copy_packet(self, packet: av.Packet, source_index: int) -> None:
        """Mux a packet of the `copy_from` stream with index `source_index`: same bytes, its
        timestamps moved by -time_offset (rounded once, in the packet's time base). The
        packet is left as it came, so it can be copied to another writer too."""
        if source_index not in self._copied:
            return
        kept = packet.pts, packet.dts, packet.duration, packet.time_base, packet.stream
        if self.time_offset:
            shift = nearest(self.time_offset / packet.time_base)
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        packet.stream = self._copied[source_index][1]
        self.container.mux(packet)  # rescales the packet to the output stream's time base
        packet.pts, packet.dts, packet.duration, packet.time_base, packet.stream = kept

    def close(self) -> None:
        """Flush the encoder, finish the file and move it to `path`; UserError (and no file)
        when no frame was written."""
        if self.frames_written == 0:
            self._discard()
            raise UserError(f"no video frames to write to {self.path}")
        try:
            duration = max(nearest(1 / (self.rate * self.time_base)), 1)   # 1 / rate
            if self._end_pts is not None and self._end_pts > self._last_pts:
                duration = self._end_pts - self._last_pts
            self._encode(self._held, duration)
            self._encode(None)
            self.container.close()
            os.replace(self.partial, self.path)
        except BaseException:
            self._discard()
            raise

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
