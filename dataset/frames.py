"""Reading frames from disk and turning triplets into tensors."""
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from network import UserError

from .augment import Triplet


def read_rgb(path: Path) -> np.ndarray:
    """An 8-bit image file as an H x W x 3 uint8 RGB array (alpha dropped, grey expanded)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"cannot read image {path} (missing or not an image)")
    return np.ascontiguousarray(image[:, :, ::-1])


def to_tensors(frames: Triplet) -> tuple[Tensor, Tensor, Tensor]:
    """Three H x W x 3 uint8 RGB arrays -> three [3, H, W] float32 tensors in [0, 1]."""
    return tuple(torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1))).float() / 255
                 for frame in frames)


def require_dir(path: Path, what: str) -> Path:
    """`path` itself if it is a folder; otherwise UserError naming what was expected."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{what} not found: {path} is not a folder")
    return path


def require_file(path: Path, what: str) -> Path:
    """`path` itself if it is a file; otherwise UserError naming what was expected."""
    if not path.is_file():
        raise UserError(f"{what} not found: expected the file {path}")
    return path


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The augmentation generator of one sample: a pure function of (seed, epoch, index)."""
    return np.random.default_rng((seed, epoch, index))
