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


def check_triplet(frames: Triplet, where: Path, crop: int | None = None) -> Triplet:
    """`frames` unchanged; UserError naming `where` (the triplet's folder or first file) unless
    the three are of one size and, with `crop`, at least crop x crop."""
    sizes = [frame.shape[:2] for frame in frames]
    if len(set(sizes)) > 1:
        raise UserError(f"triplet {where}: frames of different sizes "
                        f"({', '.join(f'{h}x{w}' for h, w in sizes)})")
    height, width = sizes[0]
    if crop and (height < crop or width < crop):
        raise UserError(f"triplet {where}: frames of {height}x{width}, smaller than the crop "
                        f"{crop}x{crop}")
    return frames


def read_lines(path: Path, what: str) -> list[str]:
    """The lines of the text file `path` (`what` it is); UserError if it is not text."""
    try:
        return path.read_text().splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not a text file") from None


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
