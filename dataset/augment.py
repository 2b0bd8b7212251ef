"""Joint augmentation of a training triplet (I0, GT, I1).

Every function takes frames as H x W x 3 NumPy arrays (any dtype) and applies the same
geometric change to all three, so the motion between them stays consistent. Random decisions
come from the `np.random.Generator` passed in, never from global state: the datasets derive one
generator per (seed, epoch, sample), which makes augmentation independent of worker count,
rank and resumption.
"""
import numpy as np

Triplet = tuple[np.ndarray, np.ndarray, np.ndarray]


def random_crop(frames: Triplet, size: int, rng: np.random.Generator) -> Triplet:
    """The same size x size window of each frame, offsets uniform over all valid positions."""
    height, width = frames[0].shape[:2]
    if height < size or width < size:
        raise ValueError(f"frame {height}x{width} is smaller than the {size}x{size} crop")
    top = int(rng.integers(0, height - size, endpoint=True))
    left = int(rng.integers(0, width - size, endpoint=True))
    return tuple(frame[top:top + size, left:left + size] for frame in frames)


def vimeo_augment(frames: Triplet, rng: np.random.Generator) -> Triplet:
    """Vimeo90K recipe, in order: swap I0/I1, vertical flip, horizontal
    flip (each p = 0.5), then rotate 90° clockwise, 180° or 90° counter-clockwise (p = 0.25
    each; no rotation otherwise)."""
    im0, gt, im1 = frames
    if rng.random() < 0.5:
        im0, im1 = im1, im0
    frames = (im0, gt, im1)
    if rng.random() < 0.5:
        frames = tuple(frame[::-1] for frame in frames)
    if rng.random() < 0.5:
        frames = tuple(frame[:, ::-1] for frame in frames)
    u = rng.random()
    turns = 3 if u < 0.25 else 2 if u < 0.5 else 1 if u < 0.75 else 0   # counter-clockwise
    return tuple(np.rot90(frame, turns) for frame in frames)


def x4k_augment(frames: Triplet, rng: np.random.Generator) -> Triplet:
    """X4K1000FPS recipe: horizontal flip with p = 0.5, then rotation by
    k x 90° counter-clockwise, k uniform in {0, 1, 2, 3}."""
    if rng.random() < 0.5:
        frames = tuple(frame[:, ::-1] for frame in frames)
    turns = int(rng.integers(0, 4))
    return tuple(np.rot90(frame, turns) for frame in frames)
