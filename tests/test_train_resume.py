"""Resuming a stopped run, and training under torchrun (DDP, gloo on CPU)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
from network import load_network, read_checkpoint
from training_data import make_vimeo, read_scalars, smoke_args

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vimeo(tmp_path_factory):
    """Four training triplets: two steps per epoch at batch 2."""
    return make_vimeo(tmp_path_factory.mktemp("resume_data") / "vimeo", train=4, test=1)


def phase1(vimeo: Path, folder: Path, checkpoints: Path, *extra: str) -> None:
    args = ["--phase", "1", "--vimeo_path", str(vimeo), "--epochs", "2", "--warmup", "2",
            *smoke_args(folder), "--model_checkpoints", str(checkpoints), *extra]
    assert train.main(args) == 0


def test_resumed_run_logs_what_an_uninterrupted_run_logs(vimeo, tmp_path):
    phase1(vimeo, tmp_path / "whole", tmp_path / "whole_ckpt")
    phase1(vimeo, tmp_path / "first", tmp_path / "ckpt", "--max_steps", "3")   # stops mid-epoch
    phase1(vimeo, tmp_path / "second", tmp_path / "ckpt", "--resume")
    for tag in ("train/loss", "train/psnr", "train/lr"):
        whole = read_scalars(tmp_path / "whole" / "runs", tag)
        first = read_scalars(tmp_path / "first" / "runs", tag)
        second = read_scalars(tmp_path / "second" / "runs", tag)
        assert sorted(whole) == [1, 2, 3, 4] and sorted(first) == [1, 2, 3]
        assert sorted(second) == [4]
        assert {**first, **second} == pytest.approx(whole, rel=1e-6, abs=0)
    resumed = read_checkpoint(next((tmp_path / "ckpt").glob("epoch_1_step_4_*.pt")))
    uninterrupted = read_checkpoint(next((tmp_path / "whole_ckpt").glob("epoch_1_step_4_*.pt")))
    assert resumed["train_metric"] == pytest.approx(uninterrupted["train_metric"], rel=1e-6)
    for name, weight in uninterrupted["model_state_dict"].items():
        torch.testing.assert_close(resumed["model_state_dict"][name], weight, rtol=1e-6,
                                   atol=1e-7)


def test_resumed_run_keeps_the_moving_average(vimeo, tmp_path):
    """--ema: the average (model_state_dict) and the trained weights both continue."""
    ema = ("--ema", "0.9")
    phase1(vimeo, tmp_path / "whole", tmp_path / "whole_ckpt", *ema)
    phase1(vimeo, tmp_path / "first", tmp_path / "ckpt", "--max_steps", "3", *ema)
    phase1(vimeo, tmp_path / "second", tmp_path / "ckpt", "--resume", *ema)
    resumed = read_checkpoint(next((tmp_path / "ckpt").glob("epoch_1_step_4_*.pt")))
    uninterrupted = read_checkpoint(next((tmp_path / "whole_ckpt").glob("epoch_1_step_4_*.pt")))
    for key in ("model_state_dict", "trained_state_dict"):
        for name, weight in uninterrupted[key].items():
            torch.testing.assert_close(resumed[key][name], weight, rtol=1e-6, atol=1e-7)


def test_resume_without_a_checkpoint_is_one_clear_line(vimeo, tmp_path, capsys):
    assert train.main(["--phase", "1", "--vimeo_path", str(vimeo), "--resume",
                       *smoke_args(tmp_path)]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_torchrun_two_cpu_processes_write_one_checkpoint(vimeo, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(ROOT / "train.py"), "--phase", "1", "--vimeo_path",
               str(vimeo), "--epochs", "1", *smoke_args(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    written = list((tmp_path / "checkpoints").iterdir())
    assert len(written) == 1 and written[0].name.startswith("epoch_0_step_2_"), written
    assert read_checkpoint(written[0])["meta_data"]["world_size"] == 2
    load_network(written[0])
