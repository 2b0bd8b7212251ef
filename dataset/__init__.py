"""Training and validation data for ATM-VFI: Vimeo90K, X4K1000FPS and SNU-FILM, and known-motion
triplets made from photographs (`write_known_motion`, `KnownMotionTriplet`).

Every dataset yields triplets (I0, GT, I1), each [3, H, W] float32 RGB in [0, 1], GT being the
frame halfway between I0 and I1. A missing or malformed root raises `network.UserError` with one
line naming what was expected.
"""
from .augment import random_crop, vimeo_augment, x4k_augment
from .sampler import ShardedSampler
from .snufilm import SnuFilm
from .vimeo import VimeoTriplet
from .x4k import FRAMES_PER_CLIP, X4KTrain, draw_triplet

__all__ = ["VimeoTriplet", "X4KTrain", "SnuFilm", "ShardedSampler", "draw_triplet",
           "FRAMES_PER_CLIP", "random_crop", "vimeo_augment", "x4k_augment", "KnownMotionTriplet",
           "write_known_motion"]


def __getattr__(name: str):
    """The known-motion names import `dataset.synthetic` (and scikit-image) on first use, so
    that `python -m dataset.synthetic` runs a module not yet imported by this package."""
    if name in ("KnownMotionTriplet", "write_known_motion"):
        from . import synthetic
        return getattr(synthetic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
