"""Vimeo90K triplet test (README: Benchmarks): every entry of tri_testlist.txt, im1/im3 -> im2,
unpadded 256x448, global motion off, no rounding, PSNR in float64."""
import argparse
from pathlib import Path

import torch

from benchmark.evaluate import Protocol, Split, TripletPaths, benchmark_main, benchmark_parser
from dataset.frames import read_lines
from network import UserError

PROTOCOL = Protocol(dataset="vimeo90k", title="Vimeo90K", global_motion=False, pad_divisor=None,
                    round_prediction=False, psnr_dtype=torch.float64)
LAYOUT = ("DIR/tri_testlist.txt (one <sequence>/<clip> per line) and "
          "DIR/sequences/<entry>/im1.png, im2.png, im3.png")


def build_splits(args: argparse.Namespace) -> tuple[list[Split], dict[str, object]]:
    root: Path = args.path
    test_list = root / "tri_testlist.txt"
    if not test_list.is_file():
        raise UserError(f"{test_list}: file not found; expected layout: {LAYOUT}")
    entries = [line.strip() for line in read_lines(test_list, "Vimeo90K test list")]
    entries = [entry for entry in entries if len(entry) > 1]   # the official list ends with blank lines
    if not entries:
        raise UserError(f"{test_list}: lists no triplets; expected layout: {LAYOUT}")
    triplets = [TripletPaths(name=entry, frame0=root / "sequences" / entry / "im1.png",
                             gt=root / "sequences" / entry / "im2.png",
                             frame1=root / "sequences" / entry / "im3.png") for entry in entries]
    return [Split("all", triplets)], {"path": str(root)}


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, swap_order_flag=True)
    parser.add_argument("--path", type=Path, required=True,
                        help="the vimeo_triplet folder (holding tri_testlist.txt and sequences/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return benchmark_main(build_parser(), PROTOCOL, build_splits, LAYOUT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
