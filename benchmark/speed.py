"""Inference speed and memory of ATM-VFI per variant, size and precision, next to the machine's
own measured matmul and convolution throughput.

    python benchmark/speed.py                                  # base and lite, 256x448, 720p, 1080p
    python benchmark/speed.py --variants base --sizes 2176x3840 --precisions fp32 --repeats 1
    python benchmark/speed.py --reference ~/ATM-VFI      # also time the authors' code, side by side

Each configuration runs in a fresh process, so its peak memory (peak RSS on CPU, peak
allocated memory on CUDA) is its own. Weights are random: speed does not depend on them.
"""
import argparse
import logging
import multiprocessing as mp
import platform
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import torch

from benchmark.report import check_report_path, write_report
from benchmark.timing import (forward_gflop, peak_memory_gib, run_in_fresh_process, synchronize,
                              time_authors, time_calls)
from network import (PRECISIONS, VARIANTS, InputPadder, Network, UserError, autocast,
                     compile_network, keep_freed_memory, select_device)
from network.command_line import CommandLineParser, DefaultsHelpFormatter, log_to_console
from network.interruption import run_script
from network.inference import PAD_DIVISOR
from network.runtime import cpu_has_native

FLOP_PROBE_SIZE = (256, 448)   # FLOPs are counted once at this size and scaled by area


def cpuinfo_fields() -> dict[str, str]:
    """The first CPU's fields of /proc/cpuinfo ("vendor_id", "model name", "flags", ...); empty
    where there is no such file."""
    cpuinfo = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_name() -> str:
    """The CPU's model name, family and model numbers (which tell generations apart where a
    hypervisor shortens the name, e.g. AMD family 25 is Zen 3/4, 26 Zen 5) and its bf16
    instructions, from /proc/cpuinfo where there is one."""
    fields = cpuinfo_fields()
    if fields:
        name = fields.get("model name", platform.machine())
        if "cpu family" in fields and "model" in fields:
            name += f", family {fields['cpu family']} model {fields['model']}"
        flags = fields.get("flags", "").split()
        native = [flag for flag in ("avx512_bf16", "amx_bf16", "amx_fp16") if flag in flags]
        return f"{name} ({', '.join(native) or 'no bf16 instructions'})"
    return platform.processor() or platform.machine()


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"size {text!r} is not HEIGHTxWIDTH, e.g. 1080x1920") from None
    if height < 16 or width < 16:
        raise UserError(f"size {text!r} is too small (at least 16x16)")
    return height, width


def count_gflop(variant: str, global_motion: bool) -> float:
    """Forward GFLOP of one frame pair at FLOP_PROBE_SIZE (convolutions and matmuls)."""
    model = Network.from_variant(variant, global_motion=global_motion).eval()
    frames = torch.rand(2, 1, 3, *FLOP_PROBE_SIZE)
    return forward_gflop(model, frames[0], frames[1])


def measure_throughput(device: torch.device, precision: str) -> dict:
    """GFLOP/s of a large matmul and of a 3x3 convolution on `device` in `precision`: the best
    of five calls after three warm-up calls (one warm-up measured bf16 at half its rate). Freed
    memory is kept for reuse first, as the network's runs do: otherwise each float32 convolution
    output (32 MiB, glibc's largest mmap threshold) is faulted in again on every call and the
    measured peak drops by up to half."""
    keep_freed_memory()
    dtype = PRECISIONS[precision] or torch.float32
    results = {}
    a = torch.randn(2048, 2048, device=device, dtype=dtype)
    x = torch.randn(1, 128, 256, 256, device=device, dtype=dtype).to(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device, dtype, memory_format=torch.channels_last)
    work = {"matmul": (lambda: a @ a, 2 * 2048**3),
            "conv3x3": (lambda: conv(x), 2 * 128 * 128 * 9 * 256 * 256)}
    with torch.inference_mode():
        for name, (fn, flop) in work.items():
            for _ in range(3):     # oneDNN builds its kernels and every thread starts up first
                fn()
            best = float("inf")
            for _ in range(5):
                synchronize(device)
                start = time.perf_counter()
                fn()
                synchronize(device)
                best = min(best, time.perf_counter() - start)
            results[name] = flop / best / 1e9
    return results


def run_one(variant: str, size: tuple[int, int], precision: str, device_name: str,
            global_motion: bool, repeats: int, compile_model: bool, queue: mp.Queue) -> None:
    """Child process: time one configuration of our network (compiled with torch.compile when
    `compile_model`) and report through `queue`."""
    torch.manual_seed(0)
    keep_freed_memory()     # as demo_2x.py and the benchmarks do
    logging.getLogger("network.runtime").setLevel(logging.ERROR)   # the header says it once
    device = torch.device(device_name)
    model = Network.from_variant(variant, global_motion=global_motion).to(device).eval()
    if compile_model:
        compile_network(model)
    frames = torch.rand(2, 1, 3, *size, device=device)
    padder = InputPadder(frames.shape, divisor=PAD_DIVISOR)
    im0, im1 = padder.pad(frames[0], frames[1])
    with torch.inference_mode(), autocast(device, precision):
        latency, first_call = time_calls(lambda: padder.unpad(model(im0, im1)["I_t"]), device,
                                         repeats)
    report = {"latency_s": latency, "peak_memory_gib": peak_memory_gib(device)}
    if compile_model:
        report["first_call_s"] = first_call     # compilation included
    queue.put(report)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(description=__doc__.split("\n\n")[0],
                               formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--variants", default="base,lite", help="comma-separated: base, lite")
    parser.add_argument("--sizes", default="256x448,720x1280,1080x1920",
                        help="comma-separated HEIGHTxWIDTH input sizes (padded to 64 internally)")
    parser.add_argument("--precisions", default="fp32,bf16",
                        help="comma-separated: fp32, bf16, fp16 (autocast)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--global_off", action="store_true",
                        help="run without the global motion branch")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed runs per configuration, after untimed warm-up runs (three, "
                             "fewer once they have taken 10 s, unless on a CPU the last one "
                             "still page-faulted); the best is reported. 0: time the first run "
                             "alone")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the network first (ours only); the first call, which "
                             "compiles, is reported separately as first_call_s")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--reference", type=Path, metavar="CHECKOUT",
                        help="a checkout of the authors' repository (Gancheekim/ATM-VFI): time "
                             "their network too, each configuration side by side with ours, and "
                             "print the speed-up")
    return parser


def listed(text: str, known: Iterable[str], what: str) -> list[str]:
    """A comma-separated list of names, each one of `known` and given once; UserError naming
    the first other or repeated one."""
    names = text.split(",")
    for index, name in enumerate(names):
        if name not in known:
            raise UserError(f"unknown {what} {name!r}; choose from {', '.join(known)}")
        if name in names[:index]:
            raise UserError(f"{what} {name!r} given twice")
    return names


def time_ours(variant: str, size: tuple[int, int], precision: str, device: torch.device,
              args: argparse.Namespace) -> dict:
    """Latency and peak memory of our network in a fresh process (or {"error": why})."""
    queue = mp.get_context("spawn").Queue()
    exitcode = run_in_fresh_process(run_one, variant, size, precision, str(device),
                                    not args.global_off, args.repeats, args.compile, queue)
    report = queue.get() if not queue.empty() else {}
    if exitcode != 0:
        report["error"] = f"exit code {exitcode}; out of memory?"
    return report


def table_line(label: str, row: dict) -> str:
    size = row["size"]
    line = (f"{label:7} {size[0]:>4}x{size[1]:<5} {row['precision']:>5} "
            f"{row['latency_s']:10.3f} {row['frames_per_s']:9.2f} "
            f"{row['peak_memory_gib']:9.2f} {row['gflop']:8.1f} "
            f"{row['gflops_achieved']:8.1f} {row['fraction_of_conv_peak']:12.0%}")
    if "first_call_s" in row:
        line += f"   first call (compiling) {row['first_call_s']:.1f} s"
    return line


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_to_console(info_stream=sys.stderr)
    return run_script(lambda: run(args))


def run(args: argparse.Namespace) -> None:
    """Measure and print every configuration of `args` (and write --json)."""
    device = select_device(args.device)
    variants = listed(args.variants, sorted(VARIANTS), "variant")
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    if len(set(sizes)) < len(sizes):
        raise UserError(f"--sizes {args.sizes}: a size is given twice")
    precisions = listed(args.precisions, list(PRECISIONS), "precision")
    if args.reference and not all((args.reference / "network" / f"network_{v}.py").is_file()
                                  for v in variants):
        raise UserError(f"{args.reference} is not a checkout of the authors' repository "
                        f"(no network/network_{{{','.join(variants)}}}.py in it)")
    if args.repeats < 0:
        raise UserError(f"--repeats must be at least 0, got {args.repeats}")
    if args.json:
        check_report_path(args.json)

    machine = {"device": str(device), "cpu": cpu_name(), "compiled": args.compile,
               "threads": torch.get_num_threads(), "torch": torch.__version__,
               "throughput_gflops": {p: measure_throughput(device, p) for p in precisions}}
    machine["emulated_precisions"] = [p for p in precisions
                                      if device.type == "cpu" and not cpu_has_native(p)]
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    print(f"device {machine['device']} ({machine.get('gpu', machine['cpu'])}, "
          f"{machine['threads']} threads), torch {machine['torch']}")
    for precision, tp in machine["throughput_gflops"].items():
        emulated = precision in machine["emulated_precisions"]
        print(f"  measured {precision}: matmul {tp['matmul']:.0f} GFLOP/s, "
              f"conv3x3 {tp['conv3x3']:.0f} GFLOP/s"
              + (" (this CPU has no such instructions: emulated)" if emulated else ""))

    results = []
    print(f"{'variant':7} {'size':>10} {'prec':>5} {'latency s':>10} {'frames/s':>9} "
          f"{'peak GiB':>9} {'GFLOP':>8} {'GFLOP/s':>8} {'of conv peak':>12}")
    for variant in variants:
        probe_gflop = count_gflop(variant, not args.global_off)
        for size in sizes:
            padded = InputPadder(size, divisor=PAD_DIVISOR).padded_size
            gflop = probe_gflop * padded[0] * padded[1] / (FLOP_PROBE_SIZE[0] * FLOP_PROBE_SIZE[1])
            for precision in precisions:
                ours = None
                for reference in [None] + ([args.reference] if args.reference else []):
                    label = variant if reference is None else "authors"
                    report = (time_ours(variant, size, precision, device, args)
                              if reference is None else
                              time_authors(reference, variant, size, precision, str(device),
                                           not args.global_off, args.repeats))
                    if "error" in report:
                        print(f"{label:7} {size[0]:>4}x{size[1]:<5} {precision:>5}   failed "
                              f"({report['error']})")
                        continue
                    row = {"variant": variant, "size": list(size), "precision": precision,
                           "implementation": "ours" if reference is None else "authors",
                           "gflop": gflop, **report}
                    row["frames_per_s"] = 1 / row["latency_s"]
                    row["gflops_achieved"] = gflop / row["latency_s"]
                    row["fraction_of_conv_peak"] = (
                        row["gflops_achieved"] / machine["throughput_gflops"][precision]["conv3x3"])
                    line = table_line(label, row)
                    if reference is None:
                        ours = row
                    elif ours is not None:
                        ours["speedup_vs_authors"] = row["latency_s"] / ours["latency_s"]
                        line += f"   ours is {ours['speedup_vs_authors']:.2f}x as fast"
                    results.append(row)
                    print(line, flush=True)
    if args.json:
        write_report({"machine": machine, "results": results}, args.json)


if __name__ == "__main__":
    sys.exit(main())
