"""benchmark/speed.py: its report, not its timings (those are for people to read)."""
import json
import mmap
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark import speed, timing, video_overhead
from video_clips import write_clip


def test_bad_size_is_one_line_and_exit_1(capsys, tmp_path):
    assert speed.main(["--sizes", "1080p"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: size '1080p' is not HEIGHTxWIDTH, e.g. 1080x1920"]
    assert speed.main(["--json", str(tmp_path / "missing" / "out.json")]) == 1
    assert speed.main(["--repeats", "-1"]) == 1
    assert speed.main(["--json", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2:] == ["error: --repeats must be at least 0, got -1",
                        f"error: output {tmp_path} is a directory"]


def test_tiny_run_reports_every_field(tmp_path):
    out = tmp_path / "speed.json"
    assert speed.main(["--variants", "lite", "--sizes", "64x96", "--precisions", "fp32",
                       "--device", "cpu", "--repeats", "0", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["machine"]["throughput_gflops"]["fp32"]["matmul"] > 0
    assert report["machine"]["emulated_precisions"] == []      # fp32 is never emulated
    (row,) = report["results"]
    assert row["variant"] == "lite" and row["size"] == [64, 96] and row["precision"] == "fp32"
    # FLOPs are counted at 256x448 and scaled by the padded area (64x128 here).
    assert abs(row["gflop"] - speed.count_gflop("lite", True) * 64 * 128 / (256 * 448)) < 1e-6
    assert row["latency_s"] > 0 and row["peak_memory_gib"] > 0.1
    assert abs(row["frames_per_s"] * row["latency_s"] - 1) < 1e-9


def test_reference_that_is_not_a_checkout_is_one_line_and_exit_1(capsys, tmp_path):
    assert speed.main(["--variants", "lite", "--reference", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path} is not a checkout of the authors' repository "
                   "(no network/network_{lite}.py in it)"]


def test_reference_checkout_is_timed_side_by_side(tmp_path, capsys):
    """A stand-in for the authors' checkout, laid out as theirs is: a package that is also
    called `network`, importing a module from the checkout root."""
    checkout = tmp_path / "ATM-VFI"
    (checkout / "network").mkdir(parents=True)
    (checkout / "network" / "__init__.py").write_text("")
    (checkout / "flow_warp.py").write_text("def half(x):\n    return x / 2\n")
    (checkout / "network" / "network_lite.py").write_text(
        "import torch\nfrom flow_warp import half\n\n\n"
        "class Network(torch.nn.Module):\n"
        "    def __init__(self, global_motion=True, ensemble_global_motion=False):\n"
        "        super().__init__()\n"
        "        self.scale = torch.nn.Parameter(torch.ones(()))\n\n"
        "    def forward(self, im0, im1):\n"
        "        return {'I_t': half(im0 + im1) * self.scale}\n")
    out = tmp_path / "speed.json"
    assert speed.main(["--variants", "lite", "--sizes", "64x96", "--precisions", "fp32",
                       "--device", "cpu", "--repeats", "0", "--reference", str(checkout),
                       "--json", str(out)]) == 0
    ours, authors = json.loads(out.read_text())["results"]
    assert (ours["implementation"], authors["implementation"]) == ("ours", "authors")
    assert ours["speedup_vs_authors"] == authors["latency_s"] / ours["latency_s"]
    assert "ours is" in capsys.readouterr().out.splitlines()[-1]
    # Their code failing to import is reported on its row, not as a traceback.
    (checkout / "flow_warp.py").unlink()
    assert speed.main(["--variants", "lite", "--sizes", "64x96", "--precisions", "fp32",
                       "--device", "cpu", "--repeats", "0", "--reference", str(checkout)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("authors") and "failed (ModuleNotFoundError: No module named 'flow_warp')" in last


def test_flop_count_includes_the_transformer_layers():
    """97.85 GFLOP for lite at 256x448 (97.72 for the network itself, plus the halo rows that
    banded layers recompute): every convolution and product is counted (a layer on a
    kernel FlopCounterMode does not know would count as nothing)."""
    assert abs(speed.count_gflop("lite", True) - 97.8510) < 1e-3


def test_warm_up_goes_on_while_calls_fault_in_new_pages(monkeypatch):
    """A CPU call that still grows the heap is not timed yet, however long the warm-up took;
    one that does not is timed once the warm-up time is spent."""
    monkeypatch.setattr(timing, "WARMUP_SECONDS", 0.0)
    cpu = torch.device("cpu")
    kept = []

    def growing():   # 32 MiB of new pages per call (mapped afresh, whatever the heap holds)
        block = mmap.mmap(-1, 32 << 20)
        block.write(bytes(range(256)) * (1 << 17))
        kept.append(block)

    timing.time_calls(growing, cpu, repeats=1)
    assert len(kept) == timing.WARMUP_CALLS + 1

    settled = torch.ones(8 << 20)
    calls = []
    timing.time_calls(lambda: calls.append(settled.add_(1)), cpu, repeats=1)
    assert len(calls) == 2      # the first call, then the timed one


def test_video_overhead_reports_a_tiny_clip(tmp_path, capsys):
    clip = tmp_path / "in.mp4"
    texture = np.random.default_rng(0).integers(0, 256, (40, 72, 3), dtype=np.uint8)
    # One texture moving 2 pixels a frame (no scene cut: the network runs for both pairs).
    write_clip(clip, [np.roll(texture, 2 * k, axis=1) for k in range(3)], Fraction(25))
    assert video_overhead.main(["--video", str(clip), "--frames", "3", "--repeats", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] == "cpu" and report["padded_size"] == [64, 128]
    assert report["pairs_per_run"] == 2 and len(report["tool_per_pair_s"]) == 1
    assert 0 < report["network_share_of_tool_time"][0] <= 1


def test_video_overhead_bad_counts_are_one_line(capsys):
    assert video_overhead.main(["--frames", "1"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --frames must be at least 2 and --repeats at least 1, got 1 and 2"]


def test_video_overhead_counts_the_pairs_it_converted(tmp_path, capsys):
    clip = tmp_path / "short.mp4"
    texture = np.random.default_rng(0).integers(0, 256, (40, 72, 3), dtype=np.uint8)
    write_clip(clip, [np.roll(texture, 2 * k, axis=1) for k in range(3)], Fraction(25))
    assert video_overhead.main(["--video", str(clip), "--frames", "50", "--repeats", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs_per_run"] == 2     # not 49
    single = tmp_path / "single.mp4"
    write_clip(single, [texture], Fraction(25))
    assert video_overhead.main(["--video", str(single)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {single} has 1 video frame; interpolation needs at least 2"]


def test_a_value_given_twice_is_one_line(capsys):
    assert speed.main(["--variants", "lite,lite"]) == 1
    assert speed.main(["--sizes", "64x96,64x96"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: variant 'lite' given twice", "error: --sizes 64x96,64x96: a size is given twice"]


def spawned_children(pid: int) -> list[int]:
    """Processes that `pid` started through multiprocessing's spawn (Linux /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = []
    for child in [int(c) for c in children.read_text().split()] if children.exists() else []:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:                  # ended in between
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_sigterm_stops_the_measuring_process_too():
    """SIGTERM to speed.py as soon as its fresh process exists (while the parent may still be
    starting it): both end, status 143 (the measuring process used to run on, adopted by
    init)."""
    command = [sys.executable, "-m", "benchmark.speed", "--variants", "base", "--sizes",
               "1080x1920", "--precisions", "fp32", "--device", "cpu"]
    script = subprocess.Popen(command, cwd=Path(__file__).parent.parent, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, children = time.monotonic() + 120, []
    while not children and script.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
        children = spawned_children(script.pid)
    assert children, "the measuring process never started"
    script.send_signal(signal.SIGTERM)
    status, err = script.wait(60), script.stderr.read()
    assert status == 143 and err.strip().splitlines()[-1:] == ["terminated"], (status, err)
    time.sleep(0.5)                      # a child stopped by the parent is gone at once
    for child in children:
        assert not Path(f"/proc/{child}").exists()
