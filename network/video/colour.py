"""Colour conversion between decoded YUV frames and RGB arrays, by the stream's matrix and range."""
import av
import numpy as np
from av.video.reformatter import Interpolation

AVCOL_SPC_BT709, AVCOL_SPC_BT2020 = 1, (9, 10)
AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG = 1, 2
# swscale's default fast path darkens a yuv420p -> RGB conversion by about one level;
# accurate rounding with full-resolution chroma is unbiased both ways.
COLOUR_CONVERSION = (Interpolation.BICUBIC | Interpolation.ACCURATE_RND
                     | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP)


def rgb_matrix(colorspace: int) -> str:
    """The YUV<->RGB matrix used for a stream tagged `colorspace` (601 when untagged)."""
    if colorspace == AVCOL_SPC_BT709:
        return "ITU709"
    if colorspace in AVCOL_SPC_BT2020:
        return "BT2020"
    return "ITU601"


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """Decoded frame -> [H, W, 3] uint8 RGB, honouring its matrix and range."""
    full_range = frame.color_range == AVCOL_RANGE_JPEG or frame.format.name.startswith("yuvj")
    return frame.to_ndarray(format="rgb24", src_colorspace=rgb_matrix(frame.colorspace),
                            src_color_range="JPEG" if full_range else "MPEG",
                            interpolation=COLOUR_CONVERSION)
