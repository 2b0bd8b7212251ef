"""Pre-training phases of ATM-VFI (README: Training).

    python train.py --phase 1 --vimeo_path DIR                     # local branch, Vimeo90K
    python train.py --phase 2 --x4k_path DIR --init_ckpt P1.pt     # global branch, X4K1000FPS
    torchrun --nproc_per_node 4 train.py --phase 1 --vimeo_path DIR

`python train.py --phase N --help` shows that phase's defaults; every one is a flag.
"""
import argparse
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import torch.distributed as dist

from dataset import KnownMotionTriplet, SnuFilm, VimeoTriplet, X4KTrain
from dataset.snufilm import MODES as SNUFILM_MODES
from network import PRECISIONS, VARIANTS, UserError, keep_freed_memory, read_state_dict
from network.checkpoint import detect_file_variant
from network.command_line import CommandLineParser, DefaultsHelpFormatter, log_to_console
from network.interruption import interruption_code, interruption_status, terminate_as_interrupt
from network.pretrained import resolve_checkpoint
from network.training import (Distributed, TrainConfig, check_run_folders, check_settings,
                              latest_checkpoint)
from trainer import DataSource, Trainer

log = logging.getLogger(__name__)

# dataset, global_motion and freeze are facts of the phase; the rest are flag defaults.
PHASES = {
    1: dict(dataset="vimeo", global_motion=False, freeze="global", load_optimizer=False,
            batch_size=24, crop=256, epochs=150, init_lr=2e-4, last_lr=1e-4, warmup=2000,
            model_checkpoints=Path("checkpoints/phase1"), log_dir=Path("runs/phase1")),
    2: dict(dataset="x4k", global_motion=True, freeze="local", load_optimizer=False,
            batch_size=24, crop=448, epochs=150, init_lr=2e-4, last_lr=1e-4, warmup=2000,
            model_checkpoints=Path("checkpoints/phase2"), log_dir=Path("runs/phase2")),
}


class HelpFormatter(DefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after the flags that have one; the description (usage examples) kept as written."""


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags common to both scripts. Per-phase defaults come from parser.set_defaults."""
    group = parser.add_argument_group("model")
    group.add_argument("--model_type", choices=sorted(VARIANTS),
                       help="network variant; unset: that of the checkpoint resumed or "
                            "initialised from, else base")
    group.add_argument("--init_ckpt",
                       help="checkpoint to start from: the previous phase's, an authors' "
                            "release file, or base|lite|pct (downloaded once, as in the demo)")
    group.add_argument("--scratch_init", choices=("motion", "attention", "network"),
                       default="motion",
                       help="initialisation of a network trained from scratch (no --init_ckpt "
                            "or --resume): 'network' is the network's own; 'motion' starts from "
                            "frame averaging with He-initialised convolutions and a decoder "
                            "that passes the coarse motion up (network.scratch_init), which "
                            "learns motion far sooner; 'attention' also wires the "
                            "attention's motion to the flows (learns faster at first, ends no "
                            "better after 1,000 steps; README, Training)")
    group.add_argument("--load_optimizer", action=argparse.BooleanOptionalAction,
                       help="also take the AdamW state of --init_ckpt (when it has one)")
    group = parser.add_argument_group("data")
    group.add_argument("--vimeo_path", type=Path,
                       help="Vimeo90K triplet root (tri_trainlist.txt, tri_testlist.txt, "
                            "sequences/)")
    group.add_argument("--synthetic_path", type=Path,
                       help="known-motion triplets of photographs in the Vimeo90K layout (see "
                            "dataset/synthetic.py; write one with python -m dataset.synthetic "
                            "DIR), used instead of --vimeo_path; validation adds the flows' "
                            "end-point errors")
    group.add_argument("--x4k_path", type=Path,
                       help="X4K1000FPS training root: the train/ folder or its parent")
    group.add_argument("--snufilm_path", type=Path,
                       help="SNU-FILM root (eval_modes/test-<mode>.txt and the frames) for "
                            "validating X4K training; without it X4K epochs are not validated")
    group.add_argument("--snufilm_mode", default="hard", choices=SNUFILM_MODES,
                       help="SNU-FILM difficulty used for validation")
    group.add_argument("--crop", type=int, help="training crop side in pixels")
    group.add_argument("--batch_size", type=int,
                       help="samples per optimizer step, all processes together")
    group.add_argument("--num_workers", type=int,
                       help="DataLoader worker processes per training process; unset: chosen "
                            "from the usable cores (none on a 2-core CPU, up to 8 with CUDA), "
                            "and the compute threads take the other cores")
    group.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                       help="flip/rotate/reverse training triplets (random crops stay)")
    group.add_argument("--x4k_odd_steps", action="store_true",
                       help="draw odd X4K temporal steps too, as the authors' code does "
                            "(their GT is then off the midpoint)")
    group.add_argument("--val_samples", type=int, default=0,
                       help="validate on the first N samples only (0: all)")
    group = parser.add_argument_group("optimisation")
    group.add_argument("--epochs", type=int, help="epochs; the cosine spans all of them")
    group.add_argument("--init_lr", type=float, help="learning rate at the start of the cosine")
    group.add_argument("--last_lr", type=float, help="learning rate at the end of the cosine")
    group.add_argument("--warmup", type=int, help="optimizer steps of linear warmup")
    group.add_argument("--lr_hold", type=int, default=0,
                       help="optimizer steps at --init_lr before the cosine starts (the warmup "
                            "counts among them); the cosine then spans the remaining steps (0: "
                            "the authors' curve)")
    group.add_argument("--clip_grad", type=float, default=0.0,
                       help="largest total gradient norm before each AdamW step, larger "
                            "gradients scaled down to it (0: no clipping, as the authors "
                            "trained); train/grad_norm logs the norm before clipping")
    group.add_argument("--ema", type=float, default=0.0,
                       help="also keep an exponential moving average of the weights, this "
                            "decay per optimizer step (e.g. 0.99; 0: none), warmed up as "
                            "min(decay, (1 + step) / (10 + step)), which stays under 0.99 until "
                            "step 890; validation and the "
                            "checkpoints' model_state_dict are the average, the trained "
                            "weights are saved as trained_state_dict for --resume. AdamW's "
                            "updates are unchanged")
    group.add_argument("--weight_decay", type=float, default=1e-4, help="AdamW weight decay")
    group.add_argument("--amp", choices=sorted(PRECISIONS), default="fp32",
                       help="mixed precision of the forward pass")
    group.add_argument("--compile", action="store_true",
                       help="run the training forward (not validation) through torch.compile: "
                            "the first step compiles (a minute or more on a CPU); what it gains "
                            "per step: README, Training speed")
    group.add_argument("--max_steps", type=int, default=0,
                       help="stop (validating and saving) after this many optimizer steps in "
                            "all; the lr curve still spans --epochs (0: no limit)")
    group = parser.add_argument_group("losses")
    group.add_argument("--lap_weight", type=float, default=1.0,
                       help="weight of the Laplacian pyramid loss of the prediction")
    group.add_argument("--lap_levels", type=int, default=5,
                       help="its pyramid levels (the authors' runs effectively used 3 in phase "
                            "1 and 2 later; see the README's training flags)")
    group.add_argument("--warp_weight", type=float, default=0.25,
                       help="weight of the multi-scale warping loss")
    group = parser.add_argument_group("run")
    group.add_argument("--model_checkpoints", type=Path, help="folder for checkpoints")
    group.add_argument("--log_dir", type=Path, help="folder for TensorBoard logs")
    group.add_argument("--resume", action="store_true",
                       help="continue from the newest checkpoint in --model_checkpoints")
    group.add_argument("--seed", type=int, default=22112023,
                       help="seed of weights, data order and augmentation")
    group.add_argument("--device", default="auto",
                       help="auto, cpu, cuda, cuda:N or mps (torchrun: one GPU per process)")
    group.add_argument("--val_every", type=int, default=0,
                       help="also validate and save every N steps (0: at epoch ends only)")
    group.add_argument("--keep_checkpoints", type=int, default=0, metavar="N",
                       help="delete this run's checkpoints except the newest N and the one "
                            "with the best validation PSNR, per validation set (0: keep all, "
                            "as the authors' scripts do; each holds the weights and AdamW's "
                            "state)")
    group.add_argument("--log_every", type=int, default=20,
                       help="write training scalars (means over the last N steps) every N steps")


def parse_phase_args(argv: list[str] | None, description: str = __doc__,
                     phases: dict[int, dict] = PHASES,
                     add_arguments: Callable[[argparse.ArgumentParser], None] = lambda _: None
                     ) -> argparse.Namespace:
    """The flags, with the defaults of the chosen --phase."""
    pre = CommandLineParser(add_help=False)
    pre.add_argument("--phase", type=int, choices=sorted(phases), default=min(phases),
                     help="training phase; sets the defaults below (see them with "
                          "--phase N --help)")
    parser = CommandLineParser(description=description, parents=[pre],
                               formatter_class=HelpFormatter)
    add_training_arguments(parser)
    add_arguments(parser)
    parser.set_defaults(**phases[pre.parse_known_args(argv)[0].phase])
    return parser.parse_args(argv)


def run_cli(argv: list[str] | None, description: str, phases: dict[int, dict],
            add_arguments: Callable[[argparse.ArgumentParser], None],
            run: Callable[[argparse.Namespace], None]) -> int:
    """Parse with the defaults of the chosen --phase, then `run(args)`; a UserError becomes
    one line on stderr and exit status 1. Under torchrun only the first process logs warnings;
    an error met before the processes join (the settings, every process alike) is printed by
    the first one only, one met after (a damaged image in one process's share) by the process
    that met it, naming it; a process whose peers stopped exits without a traceback of its own."""
    args = parse_phase_args(argv, description, phases, add_arguments)
    distributed = Distributed.from_env()
    log_to_console(logging.INFO if distributed.is_main else logging.ERROR, sys.stderr)
    keep_freed_memory()   # no page faults for every step's activations (lite: ~1,200 per step)
    try:
        with terminate_as_interrupt():   # SIGTERM unwinds like Ctrl-C: no half-written files
            run(args)
    except UserError as error:
        if distributed.is_main:
            print(f"error: {one_line(error)}", file=sys.stderr)
        elif dist.is_initialized():
            print(f"error (process {distributed.rank}): {one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interruption:   # Ctrl-C, or SIGTERM as `Terminated`
        if not distributed.is_main:
            return interruption_code(interruption)
        saved = latest_checkpoint(args.model_checkpoints) is not None
        return interruption_status(interruption, "; --resume continues from the last checkpoint"
                                   if saved else "; no checkpoint was written yet")
    except RuntimeError as error:
        if distributed.world_size == 1 or not PEER_GONE.search(str(error)):
            raise
        if distributed.is_main:
            print("error: another training process stopped (see its message)", file=sys.stderr)
        return 1
    return 0


# What gloo and NCCL say in a collective when another process of the run has exited.
PEER_GONE = re.compile(r"closed by peer|reset by peer|Broken pipe|NCCL communicator was aborted")


def one_line(error: UserError) -> str:
    """The message of `error`; for one re-raised from a DataLoader worker (traceback text
    included), its original message."""
    last = (str(error).strip().splitlines() or [type(error).__name__])[-1]
    return last.removeprefix(f"{type(error).__module__}.{type(error).__qualname__}: ")


def check_batching(args: argparse.Namespace, prefix: str = "") -> None:
    """UserError unless --{prefix}batch_size (at least 1: check_settings) is divisible by the
    number of processes (torchrun), and the network takes --{prefix}crop square crops (a
    multiple of 8 pixels, at least 16; with global motion of 16, at least 32: a crop of one
    token at the coarsest attention level makes the network's outputs NaN)."""
    batch_size, crop = getattr(args, f"{prefix}batch_size"), getattr(args, f"{prefix}crop")
    processes = Distributed.from_env().world_size
    if batch_size % processes:
        raise UserError(f"--{prefix}batch_size {batch_size} is not divisible by the {processes} "
                        "processes (it counts all of them together)")
    divisor = 16 if args.global_motion else 8
    if crop < 2 * divisor or crop % divisor:    # one token at 1/divisor: outputs not finite
        raise UserError(f"--{prefix}crop {crop}: this phase's network takes crops of a "
                        f"multiple of {divisor} pixels, at least {2 * divisor}")


# What each training set is called, and the flags that only it uses.
DATA_FLAGS = {"vimeo": ("Vimeo90K", ("--vimeo_path", "--synthetic_path")),
              "x4k": ("X4K1000FPS", ("--x4k_path", "--snufilm_path", "--x4k_odd_steps"))}


def check_data_flags(args: argparse.Namespace, uses: tuple[str, ...]) -> None:
    """UserError unless the phase, training on the sets `uses` ("vimeo", "x4k"), has the roots
    it needs and no data flag it would ignore: one of --vimeo_path and --synthetic_path for
    Vimeo90K, --x4k_path for X4K1000FPS."""
    def given(flag: str) -> bool:
        return bool(getattr(args, flag.removeprefix("--")))
    unused = [flag for name, (_, flags) in DATA_FLAGS.items() if name not in uses
              for flag in flags if given(flag)]
    if unused:
        sets = " and ".join(DATA_FLAGS[name][0] for name in uses)
        raise UserError(f"{', '.join(unused)}: not used by phase {args.phase}, which trains on "
                        f"{sets}")
    if "vimeo" in uses:
        if args.vimeo_path is not None and args.synthetic_path is not None:
            raise UserError("give --vimeo_path or --synthetic_path, not both")
        if args.vimeo_path is None and args.synthetic_path is None:
            raise UserError("this phase needs --vimeo_path DIR (the Vimeo90K triplet root) or "
                            "--synthetic_path DIR (a known-motion set)")
    if "x4k" in uses and args.x4k_path is None:
        raise UserError("this phase needs --x4k_path DIR (the X4K1000FPS training root)")


def vimeo_sources(args: argparse.Namespace, batch_size: int,
                  crop: int) -> tuple[DataSource, DataSource]:
    """Vimeo90K training crops and the full-frame test list (the authors' validation set); or
    the same from a known-motion set, with --synthetic_path."""
    if args.synthetic_path is not None:
        root, kind, name = args.synthetic_path, KnownMotionTriplet, "known-motion"
        if not (root / "tri_trainlist.txt").is_file():
            raise UserError(f"no known-motion set in {root}; write one with: python -m "
                            f"dataset.synthetic {root}")
    else:
        root, kind, name = args.vimeo_path, VimeoTriplet, "vimeo"
    train = kind(root, "train", crop=crop, augment=args.augment, seed=args.seed)
    return DataSource(train, batch_size, name), DataSource(kind(root, "test"), batch_size, name)


def x4k_sources(args: argparse.Namespace, batch_size: int,
                crop: int) -> tuple[DataSource, DataSource | None]:
    """X4K1000FPS training triplets and, when --snufilm_path is given, SNU-FILM validation."""
    train = X4KTrain(args.x4k_path, crop=crop, odd_steps=args.x4k_odd_steps,
                     augment=args.augment, seed=args.seed)
    if args.snufilm_path is None:
        log.warning("no --snufilm_path: X4K1000FPS epochs are not validated")
        return DataSource(train, batch_size, "x4k"), None
    return (DataSource(train, batch_size, "x4k"),
            DataSource(SnuFilm(args.snufilm_path, args.snufilm_mode), 1, "snufilm"))


def resolve_model(args: argparse.Namespace) -> None:
    """Turn --init_ckpt (a path or a release name) into an existing file, and fill in
    --model_type from the checkpoint the run starts from when it is not given."""
    if args.init_ckpt is not None and args.resume:
        log.warning("--resume continues from the newest checkpoint in %s; --init_ckpt %s is "
                    "not used", args.model_checkpoints, args.init_ckpt)
        args.init_ckpt = None
    if args.init_ckpt is not None:
        args.init_ckpt = resolve_checkpoint(args.init_ckpt, "--init_ckpt")
    elif not args.resume and args.phase != 1:
        log.warning("phase %d normally starts from the previous phase's checkpoint "
                    "(--init_ckpt)", args.phase)
    if args.model_type is None:
        start = latest_checkpoint(args.model_checkpoints) if args.resume else args.init_ckpt
        args.model_type = detect_file_variant(read_state_dict(start), start) if start else "base"


def run(args: argparse.Namespace) -> None:
    check_settings(args)
    check_batching(args)
    check_data_flags(args, (args.dataset,))
    check_run_folders(args)          # again in Trainer, for library callers
    resolve_model(args)
    sources = vimeo_sources if args.dataset == "vimeo" else x4k_sources
    train, val = sources(args, args.batch_size, args.crop)
    Trainer(TrainConfig.from_args(args), train, val).fit()


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, __doc__, PHASES, lambda _: None, run)


if __name__ == "__main__":
    raise SystemExit(main())
