"""The settings of a training run (TrainConfig) and the ranges they must lie in."""
import argparse
import math
from dataclasses import dataclass, fields
from pathlib import Path

from ..runtime import UserError

# The numeric settings' allowed values: name -> (test, wording). None (num_workers: chosen
# for the machine) is always allowed; x4k_batch_size is finetune.py's flag.
SETTING_LIMITS = {
    **{name: (lambda v: v >= 1, "at least 1")
       for name in ("epochs", "batch_size", "x4k_batch_size", "lap_levels", "log_every")},
    **{name: (lambda v: v >= 0, "at least 0")
       for name in ("last_lr", "warmup", "weight_decay", "lap_weight", "warp_weight",
                    "max_steps", "val_every", "val_samples", "num_workers", "lr_hold",
                    "clip_grad", "keep_checkpoints", "perceptual_weight", "style_weight")},
    "init_lr": (lambda v: v > 0, "more than 0"),
    "ema": (lambda v: 0 <= v < 1, "at least 0 and less than 1"),
    "seed": (lambda v: 0 <= v < 2**32, "from 0 to 4294967295"),     # NumPy's seed range
}


# The settings with a fixed set of values (the flags' choices).
SETTING_CHOICES = {
    "phase": (1, 2, 3, 4), "model_type": ("base", "lite"),
    "freeze": ("none", "local", "global"), "amp": ("fp32", "bf16", "fp16"),
    "scratch_init": ("network", "motion", "attention"),
}


def check_settings(settings: object) -> None:
    """UserError naming the flag of the first numeric setting out of its range (SETTING_LIMITS);
    settings: a TrainConfig or the command line's argparse.Namespace."""
    for name, (allowed, wording) in SETTING_LIMITS.items():
        value = getattr(settings, name, None)
        if value is not None and not math.isfinite(value):
            raise UserError(f"--{name} must be a finite number, got {value}")
        if value is not None and not allowed(value):
            raise UserError(f"--{name} must be {wording}, got {value}")


@dataclass
class TrainConfig:
    """Everything the loop needs; the command-line flags of the same names set it."""

    phase: int                 # 1-4, recorded in checkpoints; resuming checks it
    model_type: str            # "base" | "lite"
    global_motion: bool        # run the 1/16 global-motion branch
    freeze: str                # branch kept fixed: "none" | "local" | "global"
    init_ckpt: Path | None     # weights (and optionally AdamW state) to start from
    load_optimizer: bool       # take the AdamW state of init_ckpt as well
    epochs: int
    batch_size: int            # samples per optimizer step, all processes together
    init_lr: float             # cosine start
    last_lr: float             # cosine end
    warmup: int                # optimizer steps of linear warmup
    weight_decay: float
    lap_weight: float          # weight of the Laplacian loss of the prediction
    lap_levels: int            # its pyramid levels
    warp_weight: float         # weight of the multi-scale warping loss
    amp: str                   # "fp32" | "bf16" | "fp16"
    scratch_init: str          # fresh network: "network" | "motion" | "attention"
    max_steps: int             # stop after this many optimizer steps in all (0: no limit)
    val_every: int             # validate and save every N steps too (0: at epoch ends only)
    val_samples: int           # validate on the first N samples only (0: all)
    log_every: int             # TensorBoard training scalars every N steps (window means)
    num_workers: int | None    # DataLoader workers per process (None: chosen by share_cores)
    seed: int
    device: str
    model_checkpoints: Path    # checkpoint folder
    log_dir: Path              # TensorBoard folder
    resume: bool               # continue from the newest checkpoint in model_checkpoints
    compile: bool = False      # run the training forward through torch.compile
    lr_hold: int = 0           # optimizer steps at init_lr after the warmup, before the cosine
    clip_grad: float = 0.0     # largest total gradient norm (0: no clipping)
    ema: float = 0.0           # decay of the weights' moving average, validated and saved (0: none)
    keep_checkpoints: int = 0  # keep this run's newest N checkpoints and its best (0: all)

    def __post_init__(self):
        """Paths given as strings become Paths; out-of-range numbers and unknown choices are
        UserErrors, as the flags' are."""
        check_settings(self)
        for name, allowed in SETTING_CHOICES.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"--{name} must be one of {', '.join(map(str, allowed))}, got "
                                f"{getattr(self, name)!r}")
        for name in ("init_ckpt", "model_checkpoints", "log_dir"):
            if getattr(self, name) is not None:
                setattr(self, name, Path(getattr(self, name)))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainConfig":
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})
