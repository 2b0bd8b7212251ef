"""Reading ATM-VFI checkpoints: the authors' training dicts, bare state_dicts and DDP ones."""
import logging
import pickle
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from .config import VARIANTS
from .model import Network
from .runtime import UserError, select_device

log = logging.getLogger(__name__)

TRANSIENT_KEYS = ("attn_mask", "HW")      # per-input buffers of the authors' code, never weights
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


class CheckpointError(UserError):
    """The file is missing, unreadable, not a checkpoint, or holds another variant."""


def is_torch_file(path: Path) -> bool:
    """Whether `path` starts as torch.save's files do: a zip archive ("PK"), or in old
    versions a pickle (0x80)."""
    with path.open("rb") as file:
        magic = file.read(2)
    return magic == b"PK" or magic[:1] == b"\x80"


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file onto the CPU without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not is_torch_file(path):
        raise CheckpointError(f"{path} is not a PyTorch checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).splitlines()[0] if str(e) else "unsupported content"
        raise CheckpointError(f"{path} holds more than weights and was not loaded ({reason})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError):
        raise CheckpointError(f"{path} is truncated or corrupt (could not be read as a "
                              "PyTorch checkpoint)") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} does not hold a dict of weights")
    return checkpoint


def clean_state_dict(state_dict: dict) -> dict[str, Tensor]:
    """Strip wrapper prefixes, nested ones too (`_orig_mod.module.` of a compiled DDP model),
    and drop the transient `attn_mask`/`HW` entries."""
    cleaned = {}
    for key, value in state_dict.items():
        while prefix := next((p for p in WRAPPER_PREFIXES if key.startswith(p)), None):
            key = key[len(prefix):]
        if not any(name in key for name in TRANSIENT_KEYS):
            cleaned[key] = value
    return cleaned


def _weights(checkpoint: dict, path: str | Path) -> dict[str, Tensor]:
    state_dict = checkpoint.get("model_state_dict", checkpoint)
    if not isinstance(state_dict, dict) or not state_dict or not all(
            isinstance(v, Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{path} holds no network weights (expected 'model_state_dict' "
                              "or a bare state_dict)")
    return clean_state_dict(state_dict)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The network weights of a checkpoint file: an authors' training dict (its
    `model_state_dict`), a bare state_dict, or either saved from a DDP-wrapped model."""
    return _weights(read_checkpoint(path), path)


def detect_variant(state_dict: dict[str, Tensor]) -> str:
    """"base" or "lite", from the width of the first encoder convolution."""
    first = state_dict.get("feat_extracts.0.0.0.weight")
    if first is None:
        raise CheckpointError("not an ATM-VFI state_dict (no feat_extracts.0.0.0.weight)")
    for name, config in VARIANTS.items():
        if first.shape[0] == config.hidden_dims[0]:
            return name
    raise CheckpointError(f"unknown ATM-VFI variant: first encoder layer has {first.shape[0]} "
                          "channels")


def detect_file_variant(state_dict: dict[str, Tensor], path: str | Path) -> str:
    """`detect_variant` of the weights read from `path`, whose errors name the file."""
    try:
        return detect_variant(state_dict)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None


def _load_weights(model: Network, state_dict: dict[str, Tensor], path: str | Path,
                  strict: bool) -> None:
    variant = detect_file_variant(state_dict, path)
    if variant != model.variant:
        raise CheckpointError(f"{path} holds {variant} weights but the model is {model.variant}; "
                              f"use --model_type {variant} (or let the variant be detected)")
    # Training checkpoints of the authors omit the constant window-offset buffers.
    for key, buffer in model.state_dict().items():
        if key.endswith("relative_coord"):
            state_dict.setdefault(key, buffer)
    result = model.load_state_dict(state_dict, strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        missing, unexpected = result.missing_keys, result.unexpected_keys
        raise CheckpointError(f"{path} does not match the {model.variant} network: "
                              f"{len(missing)} missing keys {missing[:3]}, "
                              f"{len(unexpected)} unexpected keys {unexpected[:3]}")


def load_model_checkpoint(model: Network, path: str | Path, strict: bool = True) -> dict:
    """Load the weights of `path` into `model`; returns the checkpoint's other entries
    (`meta_data`, `train_metric`, ... for the authors' layout; empty for a bare state_dict)."""
    checkpoint = read_checkpoint(path)
    _load_weights(model, _weights(checkpoint, path), path, strict)
    if "model_state_dict" not in checkpoint:
        return {}
    return {k: v for k, v in checkpoint.items() if k != "model_state_dict"}


def load_network(path: str | Path, variant: str | None = None, device: str | torch.device = "cpu",
                 global_motion: bool | None = None,
                 ensemble_global_motion: bool = False) -> Network:
    """A network with the weights of `path` (`~` expanded), in eval mode on `device` (checked by
    `select_device`: "auto" allowed, UserError where unavailable); the variant is detected
    from the weights unless given (then it must match). global_motion None: on, unless the
    checkpoint says it was trained without it (this project's phase 1, whose global branch is
    untrained)."""
    device = select_device(device)
    path = Path(path).expanduser()
    checkpoint = read_checkpoint(path)
    state_dict = _weights(checkpoint, path)
    detected = detect_file_variant(state_dict, path)
    if variant is not None and variant != detected:
        raise CheckpointError(f"{path} holds {detected} weights, not {variant}")
    if global_motion is None:
        meta = checkpoint.get("meta_data")
        global_motion = not (isinstance(meta, dict) and meta.get("global_motion") is False)
        if not global_motion:
            log.info("%s was trained without the global-motion branch: running without it",
                     path)
    model = Network.from_variant(detected, global_motion, ensemble_global_motion)
    _load_weights(model, state_dict, path, strict=True)
    return model.to(device).eval()
