"""What the training loop (trainer.py) builds on: its settings and learning-rate curve,
processes and cores, checkpoints on disk, validation metrics and pictures."""
from .checkpoints import (CHECKPOINT_NAME, check_run_folders, checkpoints_to_keep,
                          latest_checkpoint, rng_state, save_atomic, seed_everything,
                          set_rng_state)
from .config import SETTING_LIMITS, TrainConfig, check_settings
from .cores import share_cores, usable_cores
from .distributed import Distributed, MetricSums
from .metrics import batch_psnr, end_point_error, validation_images
from .schedule import learning_rate

__all__ = ["CHECKPOINT_NAME", "check_run_folders", "checkpoints_to_keep",
           "latest_checkpoint", "rng_state", "save_atomic", "seed_everything", "set_rng_state",
           "share_cores", "usable_cores", "Distributed", "MetricSums",
           "batch_psnr", "end_point_error", "validation_images", "SETTING_LIMITS",
           "TrainConfig", "check_settings", "learning_rate"]
