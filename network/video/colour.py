"""Colour conversion between decoded YUV frames and RGB arrays, by the stream's matrix and range.

8-bit sources become uint8 RGB; deeper sources (10, 12, 16 bits) become uint16 RGB on the
0..65535 scale, so a 10-bit gradient keeps all of its levels. The scale is swscale's: white of
limited-range 10/12-bit YUV is 65283 and of full-range 10-bit 65472, not 65535; converting
back with the same StreamColour restores limited-range samples exactly (full range above
8 bits: within 3 levels of 1023).
"""
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import Interpolation

# FFmpeg's enum values (libavutil/pixfmt.h).
AVCOL_SPC_RGB, AVCOL_SPC_BT709, AVCOL_SPC_BT2020 = 0, 1, (9, 10)
AVCOL_UNSPECIFIED = 2
AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG = 1, 2
# swscale's default fast path darkens a yuv420p -> RGB conversion by about one level;
# accurate rounding with full-resolution chroma is unbiased both ways.
COLOUR_CONVERSION = (Interpolation.BICUBIC | Interpolation.ACCURATE_RND
                     | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP)


def format_depth(pix_fmt: str) -> int:
    """Bits per sample of a pixel format: yuv420p 8, yuv420p10le 10, rgb48le 16."""
    return max(component.bits for component in av.VideoFormat(pix_fmt).components)


@dataclass(frozen=True)
class StreamColour:
    """How the samples of a video stream map to colours (FFmpeg's enum values, 2: unspecified).

    An output written with a source's StreamColour carries the same tags and is converted
    from RGB with the same matrix and range, at the same depth unless told otherwise.
    """
    matrix: int = AVCOL_UNSPECIFIED  # AVColorSpace: 1 BT.709, 5/6 BT.601, 9 BT.2020
    primaries: int = AVCOL_UNSPECIFIED  # AVColorPrimaries: 1 BT.709, 9 BT.2020
    transfer: int = AVCOL_UNSPECIFIED  # AVColorTransfer: 1 BT.709, 16 PQ, 18 HLG
    full_range: bool = False  # samples span 0 .. 2^depth - 1 (JPEG), not the limited range
    bit_depth: int = 8  # bits per sample of the source

    @classmethod
    def of_frame(cls, frame: av.VideoFrame) -> "StreamColour":
        """The colour description of a decoded frame (its tags and its pixel format's depth).
        RGB frames (PNG, FFV1/ProRes RGB) describe a limited-range YUV output."""
        full_range = not frame.format.is_rgb and (frame.color_range == AVCOL_RANGE_JPEG
                                                  or frame.format.name.startswith("yuvj"))
        matrix = AVCOL_SPC_RGB if frame.format.is_rgb else frame.colorspace   # often untagged
        return cls(matrix=matrix, primaries=frame.color_primaries,
                   transfer=frame.color_trc, full_range=full_range,
                   bit_depth=format_depth(frame.format.name))

    @property
    def yuv_matrix(self) -> int:
        """The matrix YUV output is converted with and tagged: the source's, BT.709 for RGB."""
        return AVCOL_SPC_BT709 if self.matrix == AVCOL_SPC_RGB else self.matrix

    @property
    def sws_matrix(self) -> str:
        """swscale's name of the YUV<->RGB matrix (BT.601 when untagged, as FFmpeg does)."""
        if self.yuv_matrix == AVCOL_SPC_BT709:
            return "ITU709"
        if self.yuv_matrix in AVCOL_SPC_BT2020:
            return "BT2020"
        return "ITU601"

    @property
    def sws_range(self) -> str:
        return "JPEG" if self.full_range else "MPEG"

    @property
    def rgb_format(self) -> str:
        """rgb24 ([H, W, 3] uint8) for 8-bit sources, rgb48le (uint16) for deeper ones."""
        return "rgb24" if self.bit_depth <= 8 else "rgb48le"


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """Decoded frame -> [H, W, 3] RGB by the frame's matrix and range: uint8 for 8-bit
    sources, uint16 (0 .. 65535) for deeper ones."""
    colour = StreamColour.of_frame(frame)
    return frame.to_ndarray(format=colour.rgb_format, src_colorspace=colour.sws_matrix,
                            src_color_range=colour.sws_range, interpolation=COLOUR_CONVERSION)


def rgb_to_frame(image: np.ndarray, pix_fmt: str, colour: StreamColour) -> av.VideoFrame:
    """[H, W, 3] uint8 or uint16 RGB -> a frame in `pix_fmt`, converted by `colour`'s matrix
    and range and tagged with all of `colour`'s tags."""
    rgb_format = {np.dtype(np.uint8): "rgb24", np.dtype(np.uint16): "rgb48le"}.get(image.dtype)
    if rgb_format is None or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected [H, W, 3] uint8 or uint16 RGB, got {image.shape} {image.dtype}")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=rgb_format)
    frame = frame.reformat(format=pix_fmt, dst_colorspace=colour.sws_matrix,
                           dst_color_range=colour.sws_range, interpolation=COLOUR_CONVERSION)
    frame.colorspace, frame.color_primaries = colour.yuv_matrix, colour.primaries
    frame.color_trc = colour.transfer
    frame.color_range = AVCOL_RANGE_JPEG if colour.full_range else AVCOL_RANGE_MPEG
    return frame
