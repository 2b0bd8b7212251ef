"""How a training process shares the machine's CPU cores between DataLoader workers and
compute threads."""
import os

import torch


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def share_cores(device: torch.device, num_workers: int | None,
                processes: int = 1) -> tuple[int, int]:
    """(DataLoader workers, intra-op threads) of one of `processes` training processes on this
    machine, such that workers + threads never exceed its share of the usable cores.

    num_workers None chooses: on CUDA and MPS min(8, share - 1) workers (the GPU computes, the CPU
    decodes); on CPU share // 4 (decoding is light next to the network: none on 2 or 3 cores).
    The threads take the rest of the share, at least one. Workers compute with one thread each
    (PyTorch's default in workers).
    """
    share = max(1, usable_cores() // max(processes, 1))
    if num_workers is None:
        num_workers = min(8, share - 1) if device.type in ("cuda", "mps") else share // 4
    return num_workers, max(1, share - num_workers)
