"""Xiph 2K/4K test (README: Preparing Xiph; tests/benchmarks/xiph_protocol.md): the first 100 frames of eight
Netflix 4096x2160 clips as PNG; triplets (k-1, k, k+1) for k = 2, 4, ..., 98; "2k" area-resizes
every frame to 2048x1080, "4k" centre-crops 1080x2048; inputs replicate-padded to multiples of
32, global motion on (ensemble off), no rounding, PSNR in float32. The frames are prepared
beforehand (see the README); this script only reads them."""
import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmark.evaluate import Protocol, Split, TripletPaths, benchmark_main, benchmark_parser
from dataset.frames import read_rgb
from network import UserError

logger = logging.getLogger(__name__)

PROTOCOL = Protocol(dataset="xiph", title="Xiph", global_motion=True, pad_divisor=32,
                    round_prediction=False, psnr_dtype=torch.float32)
CLIPS = ("BoxingPractice", "Crosswalk", "DrivingPOV", "FoodMarket", "FoodMarket2", "RitualDance",
         "SquareAndTimelapse", "Tango")
GT_FRAMES = range(2, 99, 2)          # 1-based frame numbers of the ground truths
NATIVE_SIZE = (2160, 4096)           # H, W of the Netflix clips
LAYOUT = (f"DIR/<clip>/001.png ... 099.png (8-bit RGB, {NATIVE_SIZE[1]}x{NATIVE_SIZE[0]}) for the clips "
          f"{', '.join(CLIPS)}; see the README for extracting them from the Netflix .y4m files")


def resize_2k(frame: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [H/2, W/2, 3] by OpenCV area interpolation (4096x2160 -> 2048x1080)."""
    height, width = frame.shape[:2]
    return cv2.resize(frame, dsize=(width // 2, height // 2), interpolation=cv2.INTER_AREA)


def crop_4k(frame: np.ndarray) -> np.ndarray:
    """[H, W, 3] -> the centre [H/2, W/2, 3], a quarter of each side dropped (4096x2160 -> rows
    540..1619, columns 1024..3071)."""
    height, width = frame.shape[:2]
    return frame[height // 4:height - height // 4, width // 4:width - width // 4]


RESOLUTIONS = {"2k": resize_2k, "4k": crop_4k}


def parse_resolutions(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in RESOLUTIONS for name in names) or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"resolutions are a comma-separated subset of "
                                         f"{','.join(RESOLUTIONS)}, got {text!r}")
    return names


def clip_triplets(root: Path) -> list[TripletPaths]:
    """The 49 triplets of each clip, clips in the official order, named '<clip>/<GT frame>'."""
    if not root.is_dir():
        raise UserError(f"{root}: folder not found; expected layout: {LAYOUT}")
    triplets = []
    for clip in CLIPS:
        folder = root / clip
        if not folder.is_dir():
            raise UserError(f"{folder}: clip folder not found; expected layout: {LAYOUT}")
        triplets += [TripletPaths(name=f"{clip}/{k:03d}", frame0=folder / f"{k - 1:03d}.png",
                                  gt=folder / f"{k:03d}.png", frame1=folder / f"{k + 1:03d}.png")
                     for k in GT_FRAMES]
    return triplets


def build_splits(args: argparse.Namespace) -> tuple[list[Split], dict[str, object]]:
    triplets = clip_triplets(args.root)
    first = triplets[0].frame0
    if first.is_file() and read_rgb(first).shape[:2] != NATIVE_SIZE:
        logger.warning("%s is not %dx%d: the scores are not Xiph scores", first, *NATIVE_SIZE[::-1])
    splits = [Split(name, triplets, RESOLUTIONS[name]) for name in args.res]
    return splits, {"root": str(args.root), "res": args.res}


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--root", type=Path, required=True,
                        help="folder holding one sub-folder of PNG frames per clip")
    parser.add_argument("--res", type=parse_resolutions, default=",".join(RESOLUTIONS),
                        help="comma-separated resolutions: 2k (area-resized), 4k (centre crop)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return benchmark_main(build_parser(), PROTOCOL, build_splits, LAYOUT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
