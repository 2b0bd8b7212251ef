"""Training-loop options beyond the authors' recipe: the learning rate held at its peak before the
cosine (--lr_hold), gradient-norm clipping (--clip_grad), a moving average of the weights (--ema),
and how a diverging run stops."""
import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
from dataset import VimeoTriplet
from network import UserError, read_checkpoint
from network.training import TrainConfig, learning_rate
from trainer import DataSource, Trainer
from training_data import TINY, make_vimeo, read_scalars, smoke_args


def test_learning_rate_holds_the_peak_then_spans_the_rest_with_the_cosine():
    peak, end, total, warmup, hold = 1e-3, 1e-5, 100, 10, 40
    lr = [learning_rate(step, peak, end, total, warmup, hold) for step in range(total + 5)]
    assert lr[0] == pytest.approx(peak / 10)                       # warmup: (0 + 1) / 10
    assert lr[9] == lr[39] == lr[40] == pytest.approx(peak)         # held, cosine not started
    assert lr[41] < peak
    assert lr[70] == pytest.approx((peak + end) / 2)                # half of the 60 cosine steps
    assert lr[100] == lr[104] == pytest.approx(end)
    # hold 0 is the authors' curve: cosine over all steps.
    for step in (0, 5, 30, 99):
        cosine = end + (peak - end) * (1 + math.cos(math.pi * step / total)) / 2
        expected = cosine * min(1.0, (step + 1) / warmup)
        assert learning_rate(step, peak, end, total, warmup) == pytest.approx(expected)


def test_clip_grad_scales_the_gradient_to_the_norm_and_is_recorded(tmp_path):
    vimeo = make_vimeo(tmp_path / "vimeo", size=(64, 64), repeat=2)
    clip = 1e-3                                       # far below a fresh network's norm
    args = ["--phase", "1", "--vimeo_path", str(vimeo), "--epochs", "1", "--max_steps", "2",
            "--clip_grad", str(clip), "--lr_hold", "1", *smoke_args(tmp_path)]
    assert train.main(args) == 0
    norms = read_scalars(tmp_path / "runs", "train/grad_norm")
    assert len(norms) == 2 and min(norms.values()) > 10 * clip     # logged before clipping
    (path,) = (tmp_path / "checkpoints").glob("*.pt")
    checkpoint = read_checkpoint(path)
    meta = checkpoint["meta_data"]
    assert meta["use gradient clipping"] and meta["clip_grad"] == clip and meta["lr_hold"] == 1


def tiny_trainer(folder: Path, **options) -> Trainer:
    """The TINY network on two fixed 64x64 triplets, batch 2, one step."""
    vimeo = make_vimeo(folder / "vimeo", size=(64, 64), repeat=2)
    triplets = VimeoTriplet(vimeo, "train", crop=64, augment=False, seed=0)
    config = TrainConfig(phase=1, model_type="lite", global_motion=False, freeze="global",
                         init_ckpt=None, load_optimizer=False, epochs=1, batch_size=2,
                         init_lr=1e-3, last_lr=1e-3, warmup=1, weight_decay=1e-4,
                         lap_weight=1.0, lap_levels=5, warp_weight=0.25, amp="fp32",
                         scratch_init="motion", max_steps=1, val_every=0, val_samples=0,
                         log_every=1, num_workers=0, seed=1, device="cpu",
                         model_checkpoints=folder / "checkpoints", log_dir=folder / "runs",
                         resume=False, **options)
    return Trainer(config, DataSource(triplets, 2, "vimeo"), None, network=TINY)


def test_clipped_gradients_have_the_clip_norm(tmp_path):
    """After a step the gradients stay on the parameters: their total norm is the clip."""
    trainer = tiny_trainer(tmp_path, clip_grad=0.01)
    trainer.fit()
    grads = [p.grad for p in trainer.raw_model.parameters() if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    assert total.item() == pytest.approx(0.01, rel=1e-4)


def test_a_loss_that_is_not_finite_stops_the_run_before_the_step(tmp_path):
    """A NaN weight (as divergence leaves) makes the loss NaN: one UserError naming the step,
    raised before AdamW moves anything (its state stays empty)."""
    trainer = tiny_trainer(tmp_path)
    with torch.no_grad():
        next(trainer.raw_model.parameters())[0] = float("nan")
    with pytest.raises(UserError, match=r"^the loss is nan at step 1: training diverged"):
        trainer.fit()
    assert trainer.step == 0 and not trainer.optimizer.state


def test_gradients_that_are_not_finite_stop_the_run_before_the_step(tmp_path):
    """A finite loss whose gradients are not (as every process sees under torchrun when another
    process's loss is NaN): the same UserError, naming the gradient norm, before AdamW moves."""
    trainer = tiny_trainer(tmp_path)
    next(trainer.raw_model.parameters()).register_hook(lambda grad: torch.full_like(grad, math.inf))
    with pytest.raises(UserError, match=r"^the gradient norm is inf at step 1: training diverged"):
        trainer.fit()
    assert trainer.step == 0 and not trainer.optimizer.state


# A torchrun process whose loss turns NaN (its losses scaled by NaN); each process reports how
# its run ended in a file of its own.
NAN_ON_RANK_1 = """
import os, sys
from pathlib import Path
from network import UserError
from test_train_schedule import tiny_trainer
rank = int(os.environ["RANK"])
trainer = tiny_trainer(Path(sys.argv[1]) / f"rank{rank}")
if rank == 1:
    losses = trainer.losses
    trainer.losses = lambda out, gt: {k: v * float("nan") for k, v in losses(out, gt).items()}
try:
    trainer.fit()
    end = "finished"
except UserError as error:
    end = str(error)
(Path(sys.argv[1]) / f"end{rank}.txt").write_text(end)
"""


def test_under_torchrun_one_process_diverging_stops_them_all(tmp_path):
    """Two CPU processes (gloo): when one's loss is NaN, the other sees the averaged gradients
    turn NaN and stops too, at the same step, with the same message, instead of failing with a
    traceback at its next collective once the first has gone."""
    script = tmp_path / "nan_on_rank_1.py"
    script.write_text(NAN_ON_RANK_1)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(script), str(tmp_path)]
    tests = str(Path(__file__).parent)       # the child imports tiny_trainer from here
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # Each process writes its end to a file: lines the two print to one pipe can interleave.
    ends = [(tmp_path / f"end{rank}.txt").read_text() for rank in (0, 1)]
    assert [end.split(": training diverged")[0] for end in ends] == [
        "the gradient norm is nan at step 1", "the loss is nan at step 1"], ends


def test_moving_average_is_validated_and_saved(tmp_path):
    """--ema: after the first step (decay min(0.99, 1/10)) the average is 0.1 x the initial
    weights + 0.9 x the trained ones; the checkpoint holds both."""
    trainer = tiny_trainer(tmp_path, ema=0.99)
    initial = {name: p.detach().clone() for name, p in trainer.raw_model.named_parameters()}
    trainer.fit()
    trained = dict(trainer.raw_model.named_parameters())
    average = dict(trainer.validated_model.named_parameters())
    changed = 0
    for name, start in initial.items():
        torch.testing.assert_close(average[name], start.lerp(trained[name], 0.9))
        changed += not torch.equal(trained[name], start)
    assert changed > 10
    (path,) = (tmp_path / "checkpoints").glob("*.pt")
    checkpoint = read_checkpoint(path)
    for name, weight in checkpoint["model_state_dict"].items():
        if name in average:
            torch.testing.assert_close(weight, average[name].detach())
            torch.testing.assert_close(checkpoint["trained_state_dict"][name],
                                       trained[name].detach())


def test_python_api_checks_choices_and_takes_string_paths(tmp_path):
    """A misspelt choice would silently freeze nothing or start from the default weights."""
    config = tiny_trainer(tmp_path).config
    for name, value in (("freeze", "globl"), ("scratch_init", "motoin"), ("model_type", "Lite"),
                        ("amp", "bf32"), ("phase", 9)):
        with pytest.raises(UserError, match=f"^--{name} must be one of .*, got {value!r}$"):
            dataclasses.replace(config, **{name: value})
    changed = dataclasses.replace(config, model_checkpoints=str(tmp_path / "c"), log_dir="runs")
    assert changed.model_checkpoints == tmp_path / "c" and changed.log_dir == Path("runs")


def test_python_api_refuses_an_average_that_never_moves(tmp_path):
    # decay 1 would keep the initial weights for good; TrainConfig checks as the flags do.
    with pytest.raises(UserError, match=r"^--ema must be at least 0 and less than 1, got 1.0$"):
        tiny_trainer(tmp_path, ema=1.0)


def test_python_api_refuses_a_batch_that_does_not_split(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")          # checked before the processes would join
    with pytest.raises(UserError, match=r"^the vimeo batch size 2 \(all processes together\) "
                                        r"is not divisible by the 3 processes$"):
        tiny_trainer(tmp_path)
