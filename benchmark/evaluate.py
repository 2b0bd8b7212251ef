"""The evaluation loop shared by the four benchmark scripts.

A script describes its dataset as splits of triplets (file paths) and its scoring rules as a
`Protocol`; everything else — flags, checks, model loading, inference, metrics, progress bar,
table and JSON report — lives here, so the four benchmarks differ only in layout and protocol.
The protocols themselves: README, Benchmarks.
"""
import argparse
import logging
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from dataset.frames import read_rgb
from network import (PRECISIONS, VARIANTS, InputPadder, UserError, autocast, compile_network,
                     keep_freed_memory, load_network, select_device)
from network.command_line import CommandLineParser, DefaultsHelpFormatter, log_to_console
from network.interruption import run_script
from network.pretrained import PRETRAINED, resolve_checkpoint

from .metrics import psnr, quantize_8bit, ssim_matlab
from .report import check_report_path, write_report

logger = logging.getLogger(__name__)

FrameTransform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Protocol:
    """How a benchmark turns a triplet into scores."""

    dataset: str                 # JSON "dataset": vimeo90k | ucf101 | snufilm | xiph
    title: str                   # human-readable name for the progress bar and table
    global_motion: bool          # model.global_motion during the run (ensemble always off)
    pad_divisor: int | None      # centred replicate padding of the inputs; None: unpadded
    round_prediction: bool       # quantise the prediction to 8 bits before both metrics
    psnr_dtype: torch.dtype      # precision of the PSNR arithmetic (float64 or float32)

    def settings(self) -> dict:
        return {"global_motion": self.global_motion, "ensemble_global_motion": False,
                "pad_divisor": self.pad_divisor, "pad_mode": "replicate" if self.pad_divisor else None,
                "round_prediction": self.round_prediction,
                "psnr_precision": str(self.psnr_dtype).removeprefix("torch."),
                "ssim": "ssim_matlab (3-D gaussian 11, sigma 1.5, replicate pad 5, L=1)"}


@dataclass(frozen=True)
class TripletPaths:
    """One sample: the two input frames and the true middle frame."""

    name: str        # reported per-sample name
    frame0: Path     # earlier input
    gt: Path         # ground-truth middle frame
    frame1: Path     # later input


@dataclass(frozen=True)
class Split:
    """Triplets scored and averaged together (a SNU-FILM mode, a Xiph resolution, ...)."""

    name: str
    triplets: list[TripletPaths]
    transform: FrameTransform | None = None   # applied to every uint8 frame [H, W, 3] after reading


@dataclass(frozen=True)
class RunOptions:
    tta: bool = False            # flip test-time augmentation
    swap_order: bool = False     # swap-order test-time augmentation (Vimeo90K only)
    precision: str = "fp32"      # fp32 | bf16 | fp16 (autocast around the forward pass)


BuildSplits = Callable[[argparse.Namespace], tuple[list[Split], dict[str, object]]]


def benchmark_parser(description: str, *, swap_order_flag: bool = False) -> argparse.ArgumentParser:
    """The flags every benchmark script shares; the script adds its dataset flags."""
    parser = CommandLineParser(description=description,
                               formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--ckpt", required=True,
                        help="checkpoint file (authors' training dict or a bare state_dict), or "
                             f"one of {', '.join(PRETRAINED)} (downloaded once, as in the demo)")
    parser.add_argument("--model_type", choices=sorted(VARIANTS), default=None,
                        help="network variant; default: detected from the checkpoint")
    parser.add_argument("--device", default="auto",
                        help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="fp32",
                        help="arithmetic of the forward pass (the published protocol is fp32)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the network (one graph per frame size, built on "
                             "first use: pays off only over many frames of few sizes)")
    parser.add_argument("--TTA", action="store_true",
                        help="flip test-time augmentation: average with the 180°-rotated pass")
    if swap_order_flag:
        parser.add_argument("--TTA_swaporder", action="store_true",
                            help="also average with the passes on the swapped input order: "
                                 "(prediction + (P(I1, I0) + its 180°-rotated pass) / 2) / 2, "
                                 "the rotated pass included even without --TTA, as the "
                                 "authors' script does")
    parser.add_argument("--limit", type=_positive_int, default=None,
                        help="evaluate only the first N triplets of each split")
    parser.add_argument("--json", type=Path, default=None,
                        help="write averages and per-sample scores to this JSON file")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def check_files(splits: Sequence[Split], layout: str) -> None:
    """Raise UserError naming the first missing frame and the expected layout."""
    for split in splits:
        for triplet in split.triplets:
            for path in (triplet.frame0, triplet.gt, triplet.frame1):
                if not path.is_file():
                    raise UserError(f"{path}: file not found (sample {triplet.name!r}); "
                                    f"expected layout: {layout}")


def predict_with_tta(model: torch.nn.Module, frame0: Tensor, frame1: Tensor, protocol: Protocol,
                     options: RunOptions) -> Tensor:
    """Middle frame [B, 3, H, W] float32 from inputs [B, 3, H, W] in [0, 1], with the protocol's
    padding and the requested test-time augmentation (averaged before unpadding)."""
    padder = InputPadder(frame0.shape, divisor=protocol.pad_divisor) if protocol.pad_divisor else None
    if padder is not None:
        frame0, frame1 = padder.pad(frame0, frame1)

    def forward(first: Tensor, second: Tensor) -> Tensor:
        with autocast(first.device, options.precision):
            return model(first, second)["I_t"].float()

    def flipped(first: Tensor, second: Tensor) -> Tensor:
        return forward(first.flip(2, 3), second.flip(2, 3)).flip(2, 3)

    pred = forward(frame0, frame1)
    if options.tta:
        pred = (pred + flipped(frame0, frame1)) / 2
    if options.swap_order:
        swapped = (forward(frame1, frame0) + flipped(frame1, frame0)) / 2
        pred = (pred + swapped) / 2
    return padder.unpad(pred) if padder is not None else pred


def score_triplet(model: torch.nn.Module, triplet: TripletPaths, transform: FrameTransform | None,
                  protocol: Protocol, options: RunOptions, device: torch.device) -> tuple[float, float]:
    """(PSNR in dB, SSIM) of the model's middle frame against the ground truth."""
    frames = [read_rgb(path) for path in (triplet.frame0, triplet.gt, triplet.frame1)]
    if transform is not None:
        frames = [np.ascontiguousarray(transform(frame)) for frame in frames]
    if len({frame.shape for frame in frames}) != 1:
        raise UserError(f"sample {triplet.name!r}: frames differ in size "
                        f"({', '.join('x'.join(map(str, f.shape[:2])) for f in frames)})")
    # uint8 [H, W, 3] -> [1, 3, H, W]
    frame0, gt_8bit, frame1 = (torch.from_numpy(f).permute(2, 0, 1)[None] for f in frames)
    try:
        pred = predict_with_tta(model, frame0.to(device) / 255.0, frame1.to(device) / 255.0,
                           protocol, options)
    except ValueError as error:   # a frame size the network cannot take unpadded
        raise UserError(f"sample {triplet.name!r}: {error}") from None
    # Scores are computed on the CPU in the protocol's precision on every device: float64 does
    # not exist on MPS, and GPU convolutions (TF32) would round the SSIM differently.
    pred = pred.float().cpu()
    if protocol.round_prediction:
        pred = quantize_8bit(pred)
    ssim = ssim_matlab(gt_8bit / 255.0, pred)
    dtype = protocol.psnr_dtype
    return psnr(pred.to(dtype), gt_8bit.to(dtype) / 255.0), ssim


def evaluate_split(model: torch.nn.Module, split: Split, protocol: Protocol, options: RunOptions,
                   device: torch.device) -> dict:
    """Score every triplet of a split: {"psnr", "ssim", "n", "per_sample": [{"name", "psnr", "ssim"}]}."""
    per_sample: list[dict] = []
    psnr_sum = ssim_sum = 0.0
    bar = tqdm(split.triplets, desc=f"{protocol.title} {split.name}", unit="triplet", dynamic_ncols=True)
    for triplet in bar:
        psnr_db, ssim = score_triplet(model, triplet, split.transform, protocol, options, device)
        per_sample.append({"name": triplet.name, "psnr": psnr_db, "ssim": ssim})
        psnr_sum, ssim_sum = psnr_sum + psnr_db, ssim_sum + ssim
        bar.set_postfix(psnr=f"{psnr_sum / len(per_sample):.3f}", ssim=f"{ssim_sum / len(per_sample):.4f}")
    return {"psnr": statistics.fmean(s["psnr"] for s in per_sample),
            "ssim": statistics.fmean(s["ssim"] for s in per_sample),
            "n": len(per_sample), "per_sample": per_sample}


def format_table(title: str, results: dict[str, dict]) -> str:
    """Averages per split as an aligned text table."""
    width = max(len("split"), *(len(name) for name in results))
    lines = [title, f"{'split':<{width}}  {'n':>5}  {'PSNR':>8}  {'SSIM':>7}"]
    lines += [f"{name:<{width}}  {r['n']:>5}  {r['psnr']:>8.4f}  {r['ssim']:>7.5f}"
              for name, r in results.items()]
    return "\n".join(lines)


def run_benchmark(args: argparse.Namespace, protocol: Protocol, build_splits: BuildSplits,
                  layout: str) -> dict:
    """Check the data, load the model, score every split, print the table, write the JSON.

    Returns the report (the JSON content). Raises UserError for a user's mistake.
    """
    splits, dataset_settings = build_splits(args)
    if args.limit is not None:
        splits = [Split(s.name, s.triplets[:args.limit], s.transform) for s in splits]
    check_files(splits, layout)
    if args.json is not None:
        check_report_path(args.json, [Path(args.ckpt)])
    options = RunOptions(tta=args.TTA, swap_order=getattr(args, "TTA_swaporder", False),
                         precision=args.precision)

    device = select_device(args.device)
    keep_freed_memory()
    args.ckpt = resolve_checkpoint(args.ckpt)
    model = load_network(args.ckpt, variant=args.model_type, device=device)
    if protocol.global_motion and not model.global_motion:
        logger.warning("%s was trained without the global-motion branch (train.py phase 1); "
                       "%s runs it as the protocol says, untrained: expect low scores",
                       args.ckpt, protocol.title)
    model.global_motion = protocol.global_motion
    model.ensemble_global_motion = False
    if args.compile:
        compile_network(model)
    logger.info("%s: %s variant on %s, %.2f M parameters", args.ckpt, model.variant, device,
                sum(p.numel() for p in model.parameters()) / 1e6)

    results = {}
    with torch.inference_mode():
        for split in splits:
            results[split.name] = evaluate_split(model, split, protocol, options, device)

    settings = {**protocol.settings(), "tta": options.tta, "tta_swaporder": options.swap_order,
                "precision": options.precision, "limit": args.limit, **dataset_settings}
    report = {"dataset": protocol.dataset, "variant": model.variant, "checkpoint": str(args.ckpt),
              "device": str(device), "protocol": settings, "splits": results}
    tta = "TTA " + ("on" if options.tta else "off") + (", swapped order" if options.swap_order
                                                      else "")
    print(format_table(f"{protocol.title} — {model.variant}, {options.precision}, {tta}", results))
    if args.json is not None:
        write_report(report, args.json)
        logger.info("wrote %s", args.json)
    return report


def benchmark_main(parser: argparse.ArgumentParser, protocol: Protocol, build_splits: BuildSplits,
                   layout: str, argv: list[str] | None) -> int:
    """Entry point of a benchmark script: parse argv, run, exit status 0; a user's mistake is
    printed as one line on stderr with exit status 1, Ctrl-C or SIGTERM as one line with 130
    or 143."""
    args = parser.parse_args(argv)
    log_to_console(info_stream=sys.stderr)
    def work() -> None:
        run_benchmark(args, protocol, build_splits, layout)

    return run_script(work)
