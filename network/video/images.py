"""Image files: listing a folder of frames, reading and writing 8- and 16-bit images."""
from pathlib import Path

import cv2
import numpy as np
from natsort import natsorted, ns

from ..runtime import UserError
from .paths import check_output_path, written_atomically

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(directory: Path) -> list[Path]:
    """The image files of `directory` in natural name order (numbers by value: frame_2 before
    frame_10; letters whatever their case: Frame_5 before frame_9; names equal as numbers, such
    as 1 and 01, by characters); UserError if fewer than two."""
    if not directory.is_dir():
        raise UserError(f"{directory} is a file, not a directory of frames" if directory.exists()
                        else f"frames directory not found: {directory}")
    images = natsorted(sorted(p for p in directory.iterdir()
                              if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                       alg=ns.PATH | ns.IGNORECASE)
    if len(images) < 2:
        raise UserError(f"{directory} holds {len(images)} image(s) "
                        f"({', '.join(IMAGE_SUFFIXES)}); interpolation needs at least 2")
    return images


def read_image(path: Path) -> np.ndarray:
    """An image file as [H, W] grey, [H, W, 3] RGB or [H, W, 4] RGBA; uint8 or uint16 as stored."""
    if not path.is_file():
        raise UserError(f"image {path} is a directory" if path.is_dir()
                        else f"image not found: {path}")
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


def describe_image(image: np.ndarray) -> str:
    """Size, channels and depth of a `read_image` array, e.g. "584x388 RGB 8-bit"."""
    channels = {1: "grey", 3: "RGB", 4: "RGBA"}[1 if image.ndim == 2 else image.shape[2]]
    return f"{image.shape[1]}x{image.shape[0]} {channels} {image.dtype.itemsize * 8}-bit"


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
    with written_atomically(path) as partial:
        partial.write_bytes(encoded.tobytes())
