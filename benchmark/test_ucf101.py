"""UCF101 interpolation test (README: Benchmarks): every sub-folder, frame_00/frame_02 ->
frame_01_gt, unpadded 256x256, global motion off, prediction rounded to 8 bits before both
metrics, PSNR in float32."""
import argparse
from pathlib import Path

import torch

from benchmark.evaluate import Protocol, Split, TripletPaths, benchmark_main, benchmark_parser
from network import UserError

PROTOCOL = Protocol(dataset="ucf101", title="UCF101", global_motion=False, pad_divisor=None,
                    round_prediction=True, psnr_dtype=torch.float32)
LAYOUT = "DIR/<id>/frame_00.png, frame_01_gt.png, frame_02.png (one folder per triplet)"


def _folder_order(folder: Path) -> tuple[int, str]:
    """Numeric folder names in numeric order, then the others by name."""
    return (int(folder.name), "") if folder.name.isdigit() else (2 ** 63, folder.name)


def build_splits(args: argparse.Namespace) -> tuple[list[Split], dict[str, object]]:
    root: Path = args.path
    if not root.is_dir():
        raise UserError(f"{root}: folder not found; expected layout: {LAYOUT}")
    # Hidden folders (.ipynb_checkpoints) and macOS archive debris (__MACOSX) hold no triplet.
    folders = sorted((entry for entry in root.iterdir() if entry.is_dir()
                      and not entry.name.startswith((".", "__MACOSX"))), key=_folder_order)
    if not folders:
        raise UserError(f"{root}: holds no triplet folders; expected layout: {LAYOUT}")
    triplets = [TripletPaths(name=folder.name, frame0=folder / "frame_00.png",
                             gt=folder / "frame_01_gt.png", frame1=folder / "frame_02.png")
                for folder in folders]
    return [Split("all", triplets)], {"path": str(root)}


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--path", type=Path, required=True,
                        help="the ucf101_interp_ours folder (one sub-folder per triplet)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return benchmark_main(build_parser(), PROTOCOL, build_splits, LAYOUT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
