"""SNU-FILM test (README: Benchmarks): per mode, every line 'I0 GT I1' of test-<mode>.txt, inputs
replicate-padded to multiples of 64, global motion on (ensemble off), no rounding, PSNR in
float64, one average per mode."""
import argparse
from pathlib import Path

import torch

from benchmark.evaluate import Protocol, Split, TripletPaths, benchmark_main, benchmark_parser
from dataset.snufilm import LIST_PREFIX, MODES, read_snufilm_list
from network import UserError

PROTOCOL = Protocol(dataset="snufilm", title="SNU-FILM", global_motion=True, pad_divisor=64,
                    round_prediction=False, psnr_dtype=torch.float64)
LAYOUT = ("--path LISTS with LISTS/test-<mode>.txt, lines 'I0 GT I1' of paths starting "
          f"'{LIST_PREFIX}', which stands for --img_data_path")


def parse_modes(text: str) -> list[str]:
    modes = [mode.strip() for mode in text.split(",") if mode.strip()]
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes or len(set(modes)) < len(modes):
        raise argparse.ArgumentTypeError(f"modes are a comma-separated subset of {','.join(MODES)}, "
                                         f"got {text!r}")
    return modes


def read_mode(list_file: Path, image_root: Path) -> list[TripletPaths]:
    """Triplets of one mode's list, in file order; named by the GT path under the image root."""
    if not list_file.is_file():
        raise UserError(f"{list_file}: file not found; expected layout: {LAYOUT}")
    return [TripletPaths(name=gt.relative_to(image_root).as_posix()
                         if gt.is_relative_to(image_root) else str(gt),
                         frame0=frame0, gt=gt, frame1=frame1)
            for frame0, gt, frame1 in read_snufilm_list(list_file, image_root)]


def build_splits(args: argparse.Namespace) -> tuple[list[Split], dict[str, object]]:
    if not args.img_data_path.is_dir():
        raise UserError(f"{args.img_data_path}: image folder not found (--img_data_path, the folder "
                        f"that '{LIST_PREFIX}' in the lists stands for)")
    splits = [Split(mode, read_mode(args.path / f"test-{mode}.txt", args.img_data_path))
              for mode in args.modes]
    return splits, {"path": str(args.path), "img_data_path": str(args.img_data_path), "modes": args.modes}


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--path", type=Path, required=True,
                        help="folder holding test-easy.txt ... test-extreme.txt (eval_modes)")
    parser.add_argument("--img_data_path", type=Path, required=True,
                        help=f"image root: the folder that '{LIST_PREFIX}' in the lists stands for")
    parser.add_argument("--modes", type=parse_modes, default=",".join(MODES),
                        help="comma-separated modes to evaluate, in this order")
    return parser


def main(argv: list[str] | None = None) -> int:
    return benchmark_main(build_parser(), PROTOCOL, build_splits, LAYOUT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
