"""SNU-FILM test (README: Benchmarks): per mode, every line 'I0 GT I1' of test-<mode>.txt, inputs
replicate-padded to multiples of 64, global motion on (ensemble off), no rounding, PSNR in
float64, one average per mode."""
import argparse
from pathlib import Path

import torch

from benchmark.evaluate import Protocol, Split, Triplet, benchmark_main, benchmark_parser
from network import UserError

PROTOCOL = Protocol(dataset="snufilm", title="SNU-FILM", global_motion=True, pad_divisor=64,
                    round_prediction=False, psnr_dtype=torch.float64)
MODES = ("easy", "medium", "hard", "extreme")
LIST_PREFIX = "data/SNU-FILM/test/"   # stands for the image root in the official lists
LAYOUT = ("--path LISTS with LISTS/test-<mode>.txt, lines 'I0 GT I1' of paths starting "
          f"'{LIST_PREFIX}', which stands for --img_data_path")


def parse_modes(text: str) -> list[str]:
    modes = [mode.strip() for mode in text.split(",") if mode.strip()]
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"modes are a comma-separated subset of {','.join(MODES)}, "
                                         f"got {text!r}")
    return modes


def _image_path(entry: str, image_root: Path) -> Path:
    """List entry -> file: the official prefix replaced by the image root."""
    return image_root / entry.removeprefix(LIST_PREFIX)


def read_mode(list_file: Path, image_root: Path) -> list[Triplet]:
    """Triplets of one mode's list, in file order; named by the GT path under the image root."""
    if not list_file.is_file():
        raise UserError(f"{list_file}: file not found; expected layout: {LAYOUT}")
    triplets = []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        entries = line.split()
        if len(entries) != 3:
            raise UserError(f"{list_file}:{number}: expected three paths 'I0 GT I1', got {line!r}")
        frame0, gt, frame1 = (_image_path(entry, image_root) for entry in entries)
        triplets.append(Triplet(name=entries[1].removeprefix(LIST_PREFIX), frame0=frame0, gt=gt,
                                frame1=frame1))
    if not triplets:
        raise UserError(f"{list_file}: lists no triplets; expected layout: {LAYOUT}")
    return triplets


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
