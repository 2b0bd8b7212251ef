"""Training checkpoints on disk: names, atomic saving, which ones to keep, and the random
generators' states that make a resumed run continue exactly."""
import math
import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from ..runtime import UserError
from ..video.paths import written_atomically

CHECKPOINT_NAME = re.compile(r"epoch_(\d+)_step_(\d+)")


def checkpoints_to_keep(saved: list[tuple[str, float]], newest: int) -> set[int]:
    """Indices, in saving order, of the checkpoints --keep_checkpoints keeps: the last `newest`
    and, per validation set, the one of highest PSNR (the earliest of equals).
    saved: (validation set, its PSNR; -inf: not validated) per checkpoint."""
    kept = set(range(max(0, len(saved) - newest), len(saved)))
    best: dict[str, int] = {}
    for i, (val_set, psnr) in enumerate(saved):
        if psnr > -math.inf and (val_set not in best or psnr > saved[best[val_set]][1]):
            best[val_set] = i
    return kept | set(best.values())


def save_atomic(checkpoint: dict, path: Path) -> None:
    """torch.save to a partial file renamed when complete: a crash, Ctrl-C, SIGTERM (see
    train.py) or a full disk never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as partial:
        torch.save(checkpoint, partial)


def writable_folder(folder: Path, flag: str) -> None:
    """UserError (naming `flag`) unless files can be written in `folder`, or it can be made
    (its nearest existing ancestor is a folder one may write in), so that a bad path fails at
    the start, not at the first checkpoint. Creates nothing: a run that stops before it
    writes leaves no empty folders behind."""
    existing = Path(folder)
    while not (existing.exists() or existing.is_symlink()) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():       # a file, a link to nowhere, or a deleted working directory
        raise UserError(f"{flag} {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {folder}: no permission to write in {existing}")


def check_run_folders(settings: object) -> bool:
    """UserError unless the checkpoint and log folders can be written and a run without
    --resume would not mix its checkpoints with another run's (a later --resume would pick the
    newest of either). settings: a TrainConfig or the command line's argparse.Namespace.

    Returns whether a run without --resume finds TensorBoard logs in its log folder (of a run
    stopped before it saved a checkpoint, say): its curves are to replace them."""
    for flag, folder in (("--model_checkpoints", settings.model_checkpoints),
                         ("--log_dir", settings.log_dir)):
        writable_folder(folder, flag)
    if settings.resume:
        return False
    found = latest_checkpoint(settings.model_checkpoints)
    if found is not None:
        raise UserError(f"--model_checkpoints {settings.model_checkpoints} already holds "
                        f"another run's checkpoints ({found.name}): continue that run with "
                        "--resume, or give another folder")
    return any(Path(settings.log_dir).glob("events.out.tfevents.*"))


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint of the highest step among `*epoch_<e>_step_<s>*.pt` in `folder`."""
    found = [(int(match[2]), path) for path in Path(folder).glob("*.pt")
             if (match := CHECKPOINT_NAME.search(path.name))]
    return max(found)[1] if found else None


def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) generator states, storable with weights_only."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": [torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, position, has_gauss, gauss_value = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss,
                         gauss_value))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():   # as many GPUs as this process sees
        for index, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
