"""Timing and peak memory of network forward passes, for `speed.py` and `train_speed.py`.

Nothing here imports this project's `network` package, because the authors' network, which
`speed.py --reference` times too, lives in a package of the same name. `time_authors` runs
their code in a fresh Python whose working directory is their checkout (Python puts it first on
the module path for `-c`, as their modules expect) and this file as its main program.
"""
import importlib
import importlib.util
import json
import multiprocessing as mp
import resource
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

WARMUP_CALLS = 3               # untimed calls before the timed ones, at most ...
WARMUP_SECONDS = 10.0          # ... and none after they have taken this long in all, unless
SETTLED_FAULTS = 1000          # ... the last one (on a CPU) faulted in this many new pages or more
RUNTIME_FILE = Path(__file__).resolve().parent.parent / "network" / "runtime.py"


INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


def run_in_fresh_process(target, *args) -> int:
    """`target(*args)` in a fresh (spawned) Python; its exit code. Interrupted (Ctrl-C, or
    SIGTERM turned into KeyboardInterrupt), the process is stopped before the interruption
    goes on, so that no measuring process outlives the script. While it is being started
    (there is no handle to stop it by yet) a Ctrl-C or SIGTERM is only noted, and acted on
    once it has started. Queues passed in args come from `mp.get_context("spawn")`; call
    from the main thread."""
    child = mp.get_context("spawn").Process(target=target, args=args)
    noted = []
    handlers = {number: signal.signal(number, lambda number, frame: noted.append(number))
                for number in INTERRUPTS}
    try:
        child.start()
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    try:
        for number in noted[:1]:
            signal.raise_signal(number)      # its own handler acts now: KeyboardInterrupt
        child.join()
    except BaseException:
        child.terminate()
        child.join()
        raise
    return child.exitcode


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def forward_gflop(model: torch.nn.Module, *inputs: torch.Tensor) -> float:
    """GFLOP of `model(*inputs)` counted by FlopCounterMode (convolutions and matrix
    products), without gradients."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() / 1e9


def peak_memory_gib(device: torch.device) -> float:
    """Peak allocated CUDA memory, or this process's peak resident set size (on MPS that leaves
    out the GPU's allocations, for which PyTorch has no peak)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    status = Path("/proc/self/status")
    if status.exists():   # Linux: VmHWM starts afresh in a spawned process, ru_maxrss does not
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss     # bytes on macOS, else KiB
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


def page_faults() -> int:
    """Minor page faults of this process so far (on Linux, one per new 4 KiB page)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_calls(call, device: torch.device, repeats: int) -> tuple[float, float]:
    """(best of `repeats` timed calls, first call) in seconds. Untimed warm-up calls come first,
    until caches settle and the heap stops growing (every new page is a fault, and a 4K frame
    still faults in hundreds of thousands on its second call): up to WARMUP_CALLS, while they
    have taken under WARMUP_SECONDS in all or, on a CPU, the last of them still faulted in
    SETTLED_FAULTS pages or more. `repeats` 0: the first call alone is timed."""
    def timed_call() -> float:
        synchronize(device)
        start = time.perf_counter()
        call()
        synchronize(device)
        return time.perf_counter() - start

    faults = page_faults()
    times = [timed_call()]
    if not repeats:
        return times[0], times[0]
    while len(times) < WARMUP_CALLS:
        now = page_faults()
        faulted, faults = now - faults, now
        settled = device.type != "cpu" or faulted < SETTLED_FAULTS
        if settled and sum(times) >= WARMUP_SECONDS:
            break
        times.append(timed_call())
    return min(timed_call() for _ in range(repeats)), times[0]


def time_authors(checkout: Path, variant: str, size: tuple[int, int], precision: str,
                 device: str, global_motion: bool, repeats: int) -> dict:
    """Time the authors' `network/network_<variant>.py` in `checkout`, as `speed.run_one` times
    ours, in a fresh process: {"latency_s", "peak_memory_gib"}, or {"error": one line}."""
    job = json.dumps({"variant": variant, "size": size, "precision": precision, "device": device,
                      "global_motion": global_motion, "repeats": repeats})
    child = subprocess.run([sys.executable, "-c", "import runpy, sys; sys.argv = sys.argv[1:]; "
                            "runpy.run_path(sys.argv[0], run_name='__main__')", __file__, job],
                           cwd=checkout, capture_output=True, text=True)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        why = (child.stderr.strip().splitlines() or [f"exit code {child.returncode}"])[-1]
        return {"error": why}
    return json.loads(lines[-1])


def _our_runtime():
    """This project's network/runtime.py (memory reuse, autocast), loaded from its file: the
    name `network` is the authors' package in this process."""
    spec = importlib.util.spec_from_file_location("atm_vfi_runtime", RUNTIME_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _time_authors_here(job: dict) -> dict:
    """In the child of `time_authors`, whose working directory is the authors' checkout."""
    runtime = _our_runtime()
    torch.manual_seed(0)
    runtime.keep_freed_memory()     # as for ours
    runtime.log.setLevel("ERROR")   # speed.py's header says it once
    warnings.simplefilter("ignore")    # their deprecation warnings are not ours to show
    device = torch.device(job["device"])
    try:
        network = importlib.import_module(f"network.network_{job['variant']}").Network
        model = network(global_motion=job["global_motion"]).to(device).eval()
    except Exception as error:   # their code, any failure: report it, one line
        return {"error": f"{type(error).__name__}: {error}"}
    height, width = (-(-side // 64) * 64 for side in job["size"])   # as ours pads them
    im0, im1 = torch.rand(2, 1, 3, height, width, device=device)
    with torch.no_grad(), runtime.autocast(device, job["precision"]):   # as their demo runs
        latency, _ = time_calls(lambda: model(im0, im1)["I_t"], device, job["repeats"])
    return {"latency_s": latency, "peak_memory_gib": peak_memory_gib(device)}


if __name__ == "__main__":
    print(json.dumps(_time_authors_here(json.loads(sys.argv[1]))))
