"""Where and in which precision to run: device choice, autocast, and user-facing errors."""
import contextlib
import ctypes
import functools
import logging
import platform

import torch

log = logging.getLogger(__name__)


class UserError(Exception):
    """A mistake in the user's input or setup; command-line tools print it as one line."""


def select_device(name: str | torch.device = "auto") -> torch.device:
    """"auto" picks cuda, then mps, then cpu; otherwise the named device, if it is available."""
    name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda requested but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {name} requested but only {torch.cuda.device_count()} CUDA "
                        "device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("device mps requested but MPS is not available on this machine")
    return device


def compile_network(model: torch.nn.Module) -> torch.nn.Module:
    """Compile `model`'s forward in place with torch.compile (TorchInductor) and return it.

    One graph is built per input shape and precision, on the first call with it (minutes on a
    CPU); later calls of that shape reuse it. `benchmark/speed.py --compile` says whether it
    pays off on a machine.
    """
    model.compile(dynamic=False)
    return model


@functools.cache
def keep_freed_memory() -> bool:
    """Let this process reuse the memory of freed tensors (Linux, glibc).

    By default glibc gives every block above 128 KiB-32 MiB its own mapping and returns it to
    the system when freed, so the next tensor of that size is faulted in again page by page:
    a 1080p forward pass on a CPU then spends a fifth to a quarter of its time in the kernel
    (about two million page faults per pass). With this, all blocks come from the heap and
    freed ones stay there for reuse, however much is free at the heap's top (glibc would
    otherwise return what exceeds its trim threshold there, 128 KiB to 64 MiB, and a 4K
    frame's gigabytes of temporaries would be faulted in again on every call). Peak memory
    grows a little (the heap fragments), and the process keeps its peak until it exits.
    Process-wide and irreversible; the command-line tools call it, library users may. Returns
    False where it does not apply (other C libraries, macOS, Windows).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    never = -1      # mallopt(3): a trim threshold of -1 disables trimming
    return bool(mallopt(m_mmap_max, 0) and mallopt(m_trim_threshold, never))


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager:
    """Mixed-precision context for `precision` ("fp32", "bf16" or "fp16") on `device`."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    if device.type == "cpu" and not cpu_has_native(precision):
        _warn_emulated(precision)
    return torch.autocast(device_type=device.type, dtype=dtype)


@functools.cache
def _warn_emulated(precision: str) -> None:
    """Logged once per process."""
    log.warning("this CPU has no %s instructions, so %s runs emulated, slower than "
                "fp32", precision, precision)


def cpu_has_native(precision: str) -> bool:
    """False only when this is an x86 CPU known to lack native `precision` ("bf16": AVX512-BF16
    or AMX; "fp16": AMX-FP16) arithmetic; other CPUs are given the benefit of the doubt."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    probes = {"bf16": ("_is_avx512_bf16_supported", "_is_amx_tile_supported"),
              "fp16": ("_is_amx_fp16_supported",)}.get(precision, ())
    checks = [getattr(torch.cpu, name, None) for name in probes]
    if not checks or None in checks:   # fp32, or a torch without the probes
        return True
    return any(check() for check in checks)
