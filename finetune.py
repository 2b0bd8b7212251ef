"""Fine-tuning phases of ATM-VFI (README: Training): all modules, Vimeo90K and X4K1000FPS
epochs alternating.

    python finetune.py --phase 3 --init_ckpt P2.pt --vimeo_path DIR --x4k_path DIR
    python finetune.py --phase 4 --init_ckpt P3.pt --vimeo_path DIR --x4k_path DIR   # + VGG losses

`python finetune.py --phase N --help` shows that phase's defaults; every one is a flag.
"""
import argparse
import logging
from pathlib import Path

from finetune_trainer import FinetuneTrainer
from loss import PerceptualStyleLoss, load_vgg19_features
from network.training import TrainConfig, check_run_folders, check_settings
from train import (check_batching, check_data_flags, resolve_model, run_cli, vimeo_sources,
                   x4k_sources)

log = logging.getLogger(__name__)

SHARED = dict(global_motion=True, freeze="none", load_optimizer=True, batch_size=16,
              x4k_batch_size=5, crop=256, x4k_crop=448, epochs=300, init_lr=4e-5,
              last_lr=1e-5, warmup=500)
PHASES = {
    3: dict(SHARED, perceptual_weight=0.0, style_weight=0.0,
            model_checkpoints=Path("checkpoints/phase3"), log_dir=Path("runs/phase3")),
    4: dict(SHARED, perceptual_weight=0.05, style_weight=5e-9,
            model_checkpoints=Path("checkpoints/phase4"), log_dir=Path("runs/phase4")),
}


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fine-tuning")
    group.add_argument("--x4k_batch_size", type=int,
                       help="samples per optimizer step in X4K1000FPS epochs, all processes "
                            "together (--batch_size is the Vimeo90K one)")
    group.add_argument("--x4k_crop", type=int,
                       help="X4K1000FPS crop side (--crop is the Vimeo90K one)")
    group.add_argument("--perceptual_weight", type=float, help="weight of the VGG19 L1 loss")
    group.add_argument("--style_weight", type=float, help="weight of the VGG19 Gram loss")
    group.add_argument("--vgg_weights", type=Path,
                       help="torchvision VGG19 state_dict file; unset: torchvision's cache "
                            "(never downloaded)")
    group.add_argument("--vgg_official_blocks", action="store_true",
                       help="use the authors' overlapping 4th VGG block (features[16:27]) to "
                            "replicate their phase-4 run")


def run(args: argparse.Namespace) -> None:
    check_settings(args)
    check_batching(args)
    check_batching(args, "x4k_")
    check_data_flags(args, ("vimeo", "x4k"))
    check_run_folders(args)          # again in Trainer, for library callers
    resolve_model(args)
    perceptual = None
    if args.perceptual_weight or args.style_weight:
        perceptual = PerceptualStyleLoss(load_vgg19_features(args.vgg_weights),
                                         official_blocks=args.vgg_official_blocks)
    else:
        unused = [flag for flag, given in (("--vgg_weights", args.vgg_weights is not None),
                                           ("--vgg_official_blocks", args.vgg_official_blocks))
                  if given]
        if unused:
            log.warning("%s: not used, as the perceptual and style weights are 0 (phase %d)",
                        ", ".join(unused), args.phase)
    vimeo = vimeo_sources(args, args.batch_size, args.crop)
    x4k = x4k_sources(args, args.x4k_batch_size, args.x4k_crop)
    FinetuneTrainer(TrainConfig.from_args(args), vimeo, x4k, perceptual,
                    args.perceptual_weight, args.style_weight).fit()


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, __doc__, PHASES, add_finetune_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
