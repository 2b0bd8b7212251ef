"""benchmark/train_speed.py: its report adds up, and its errors are one line."""
import json

import pytest
import torch

from benchmark import train_speed
from benchmark.timing import forward_gflop


def test_report_adds_up_and_the_profile_lists_the_step_operators(tmp_path, capsys):
    """One measuring process (spawning one costs seconds) checked for both: the report's
    figures agree with each other, and --profile prints the step's heaviest operators."""
    out = tmp_path / "speed.json"
    assert train_speed.main(["--variants", "lite", "--amps", "fp32", "--device", "cpu",
                             "--batch_size", "1", "--steps", "1", "--warmup", "0",
                             "--threads", "1", "--profile", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["threads"] == 1 and report["batch_size"] == 1
    (result,) = report["results"]
    assert result["train_gflop_per_step"] == pytest.approx(3 * result["forward_gflop"])
    assert result["samples_per_s"] == pytest.approx(1 / result["step_s"])
    assert result["achieved_gflops"] == pytest.approx(result["train_gflop_per_step"] /
                                                      result["step_s"])
    assert result["fraction_of_peak"] == pytest.approx(result["achieved_gflops"] /
                                                       result["peak_gflops"])
    assert result["peak_gflops"] == max(result["peak_by_kernel"].values()) > 0
    assert result["peak_memory_gib"] > 0

    table = capsys.readouterr().out.split("lite fp32: 1 profiled step(s)\n")[1]
    assert "Self CPU" in table
    rows = [line.split() for line in table.splitlines()]
    names = [row[0] for row in rows if len(row) > 1 and row[1].endswith("%")]
    assert len(names) == train_speed.PROFILE_ROWS   # the step runs many more operators
    assert "aten::convolution_backward" in names or "aten::mkldnn_convolution" in names


def test_forward_flops_grow_with_the_batch():
    from network import Network
    model = Network.from_variant("lite", global_motion=False)
    one = forward_gflop(model, *torch.rand(2, 1, 3, 64, 64))
    assert forward_gflop(model, *torch.rand(2, 2, 3, 64, 64)) == pytest.approx(2 * one)
    assert forward_gflop(model, *torch.rand(2, 1, 3, 128, 128)) == pytest.approx(4 * one, rel=0.05)


def test_a_crop_the_network_cannot_take_is_one_line(capsys):
    assert train_speed.main(["--crop", "60"]) == 1
    assert capsys.readouterr().err.strip() == "error: --crop 60 is not a multiple of 8 of at least 16"
    assert train_speed.main(["--crop", "8"]) == 1
    assert capsys.readouterr().err.strip() == "error: --crop 8 is not a multiple of 8 of at least 16"
    assert train_speed.main(["--profile", "-1"]) == 1
    assert capsys.readouterr().err.strip() == ("error: --batch_size and --steps must be at least "
                                               "1, --warmup and --profile at least 0")


def test_a_value_given_twice_is_one_line(capsys):
    assert train_speed.main(["--amps", "fp32", "fp32"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --amps fp32 fp32: a value is given twice"]
