"""Training speed of ATM-VFI: samples/s, achieved GFLOP/s of forward plus backward, the machine's
own measured peak in the same precision, and peak memory, per variant and precision.

    python benchmark/train_speed.py                        # lite and base, fp32 and bf16
    python benchmark/train_speed.py --variants lite --amps bf16 --compile
    taskset -c 1 python benchmark/train_speed.py --threads 1 --json speed.json
    python benchmark/train_speed.py --variants lite --amps bf16 --profile 3

A step is `Trainer.train_step` of a phase-1 run (train.py's phase-1 settings, global motion
off): forward under autocast, the Laplacian and warping losses, backward, the gradient norm,
the AdamW update and the step's metrics, on random frames (speed does not depend on the data;
loading is not timed). Forward FLOPs (convolutions and matrix products) are
counted with FlopCounterMode; forward plus backward is taken as 3x that. The peak is the best of a
large matrix product and a 3x3 convolution in the step's precision, measured by the same process
with the same threads. Each configuration runs in a fresh process, so its peak memory (peak RSS
on CPU, peak allocated memory on CUDA) is its own, read after the timed steps. `--profile N` then
profiles N more steps and prints torch.profiler's table of the operators that took the most time.
"""
import argparse
import logging
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import TensorDataset

from benchmark.report import check_report_path, write_report
from benchmark.speed import cpu_name, measure_throughput
from benchmark.timing import (forward_gflop, peak_memory_gib, run_in_fresh_process,
                              synchronize)
from network import PRECISIONS, VARIANTS, UserError, keep_freed_memory, select_device
from network.command_line import CommandLineParser, DefaultsHelpFormatter, log_to_console
from network.interruption import run_script
from network.runtime import cpu_has_native
from network.training import TrainConfig, share_cores, usable_cores
from train import parse_phase_args
from trainer import DataSource, Trainer

PROFILE_ROWS = 15              # operators listed by --profile


def operator_profile(step, device: torch.device, steps: int) -> str:
    """torch.profiler's per-operator table (by self time, heaviest first) of `steps` more
    training steps."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        for _ in range(steps):
            step()
        synchronize(device)
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return profiler.key_averages().table(sort_by=sort, row_limit=PROFILE_ROWS)


def run_one(variant: str, precision: str, device_name: str, batch: int, crop: int, steps: int,
            warmup: int, threads: int, compile_model: bool, profile_steps: int,
            queue: mp.Queue) -> None:
    """Child process: time `steps` training steps of one configuration, report via `queue`."""
    torch.manual_seed(0)
    os.environ["OMP_NUM_THREADS"] = str(threads)     # the trainer keeps an explicit setting
    torch.set_num_threads(threads)
    keep_freed_memory()     # as train.py does
    logging.getLogger("network.runtime").setLevel(logging.ERROR)   # the header says it once
    frames = torch.rand(3, batch, 3, crop, crop)
    with tempfile.TemporaryDirectory() as scratch:     # the run's folders; nothing is saved
        args = parse_phase_args([
            "--phase", "1", "--model_type", variant, "--amp", precision, "--device", device_name,
            "--batch_size", str(batch), "--crop", str(crop), "--num_workers", "0",
            "--model_checkpoints", f"{scratch}/checkpoints", "--log_dir", f"{scratch}/runs",
            *(["--compile"] if compile_model else [])])
        trainer = Trainer(TrainConfig.from_args(args),
                          DataSource(TensorDataset(*frames), batch, "random"))
        trainer.writer.close()         # train_step logs nothing; the folder can go
    device = trainer.device
    frames = frames.to(device)
    gflop = forward_gflop(trainer.raw_model, frames[0], frames[2])

    def step() -> None:
        trainer.train_step(list(frames))

    times = []
    for _ in range(warmup + steps):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    memory = peak_memory_gib(device)     # the steps' own, before the peak's large tensors
    table = operator_profile(step, device, profile_steps) if profile_steps else None
    peak = measure_throughput(device, precision)
    queue.put({"step_s": statistics.median(times[warmup:]), "forward_gflop": gflop,
               "peak_gflops": max(peak.values()), "peak_by_kernel": peak,
               "peak_memory_gib": memory, "profile": table})


def measure(variant: str, precision: str, device: torch.device, args: argparse.Namespace,
            threads: int) -> dict:
    """Run one configuration in a fresh process; its report plus derived rates."""
    queue = mp.get_context("spawn").Queue()
    exitcode = run_in_fresh_process(run_one, variant, precision, str(device), args.batch_size,
                                    args.crop, args.steps, args.warmup, threads, args.compile,
                                    args.profile, queue)
    if exitcode != 0:
        raise UserError(f"{variant} {precision}: the measuring process failed (exit code "
                        f"{exitcode})")
    result = queue.get()
    train_gflop = 3 * result["forward_gflop"]
    result.update(variant=variant, precision=precision, samples_per_s=args.batch_size /
                  result["step_s"], train_gflop_per_step=train_gflop,
                  achieved_gflops=train_gflop / result["step_s"])
    result["fraction_of_peak"] = result["achieved_gflops"] / result["peak_gflops"]
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(description=__doc__.split("\n\n")[0],
                               formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["lite", "base"],
                        help="network variants to time")
    parser.add_argument("--amps", nargs="+", choices=sorted(PRECISIONS), default=["fp32", "bf16"],
                        help="autocast precisions to time (fp32: none)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--batch_size", type=int, default=8, help="samples per step")
    parser.add_argument("--crop", type=int, default=64,
                        help="training crop side in pixels (a multiple of 8, at least 16)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (the median counts)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int,
                        help="intra-op threads; unset: as training would use (all usable cores "
                             "on CPU with no DataLoader workers)")
    parser.add_argument("--compile", action="store_true",
                        help="run the network through torch.compile (use a larger --warmup)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="after timing, profile N more steps with torch.profiler and print "
                             "the operators that took the most time (0: no profile)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_to_console(info_stream=sys.stderr)
    return run_script(lambda: run(args))


def run(args: argparse.Namespace) -> None:
    """Measure and print every configuration of `args` (and write --json)."""
    for flag, names in (("--variants", args.variants), ("--amps", args.amps)):
        if len(set(names)) < len(names):
            raise UserError(f"{flag} {' '.join(names)}: a value is given twice")
    if args.crop < 16 or args.crop % 8:
        raise UserError(f"--crop {args.crop} is not a multiple of 8 of at least 16")
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0 or args.profile < 0:
        raise UserError("--batch_size and --steps must be at least 1, --warmup and "
                        "--profile at least 0")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    if args.json:
        check_report_path(args.json)
    device = select_device(args.device)
    threads = args.threads or share_cores(device, 0)[1]
    native = {p: cpu_has_native(p) for p in args.amps} if device.type == "cpu" else {}
    header = {"device": str(device), "cpu": cpu_name(),
              "usable_cores": usable_cores(), "threads": threads, "torch": torch.__version__,
              "batch_size": args.batch_size, "crop": args.crop, "compile": args.compile,
              "native_precisions": native}
    print(" ".join(f"{k}={v}" for k, v in header.items()))
    print(f"{'variant':8}{'amp':6}{'samples/s':>10}{'step s':>9}{'GFLOP/step':>11}"
          f"{'GFLOP/s':>9}{'peak':>8}{'of peak':>8}{'mem GiB':>8}")
    results = []
    for variant in args.variants:
        for precision in args.amps:
            r = measure(variant, precision, device, args, threads)
            results.append(r)
            print(f"{variant:8}{precision:6}{r['samples_per_s']:10.2f}{r['step_s']:9.3f}"
                  f"{r['train_gflop_per_step']:11.1f}{r['achieved_gflops']:9.1f}"
                  f"{r['peak_gflops']:8.1f}{r['fraction_of_peak']:8.0%}"
                  f"{r['peak_memory_gib']:8.2f}", flush=True)
            if r["profile"]:
                print(f"{variant} {precision}: {args.profile} profiled step(s)\n"
                      f"{r['profile']}", flush=True)
    if args.json:
        write_report({**header, "results": results}, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
