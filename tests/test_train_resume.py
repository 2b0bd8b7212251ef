"""Resuming a stopped run, which checkpoints a run keeps, and training under torchrun (DDP,
gloo on CPU)."""
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from network import read_checkpoint
from network.training import checkpoints_to_keep
from training_data import make_vimeo, read_scalars, smoke_args

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vimeo(tmp_path_factory):
    """Four training triplets: two steps per epoch at batch 2."""
    return make_vimeo(tmp_path_factory.mktemp("resume_data") / "vimeo", train=4, test=1)


def phase1(vimeo: Path, folder: Path, checkpoints: Path, *extra: str) -> None:
    """Two epochs of two steps; each run keeps only its newest and best checkpoint (the tests
    read the newest), not the ~140 MB of every epoch."""
    args = ["--phase", "1", "--vimeo_path", str(vimeo), "--epochs", "2", "--warmup", "2",
            "--keep_checkpoints", "1", *smoke_args(folder), "--model_checkpoints",
            str(checkpoints), *extra]
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


def test_resume_with_other_schedule_settings_says_so(vimeo, tmp_path, caplog):
    phase1(vimeo, tmp_path / "first", tmp_path / "ckpt", "--max_steps", "1")
    # --init_ckpt (here a file that does not exist) has no say in a resumed run
    phase1(vimeo, tmp_path / "second", tmp_path / "ckpt", "--max_steps", "2", "--resume",
           "--batch_size", "4", "--init_lr", "3e-4", "--init_ckpt", str(tmp_path / "absent.pt"),
           "--seed", "7")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("--batch_size 2 -> 4, --init_lr 0.0002 -> 0.0003, --seed 22112023 -> 7)" in w
               and "some of its samples come twice" in w for w in warnings), warnings
    assert any("absent.pt is not used" in w for w in warnings), warnings


def test_resume_past_the_last_epoch_says_so(vimeo, tmp_path, caplog):
    phase1(vimeo, tmp_path / "first", tmp_path / "ckpt", "--epochs", "1")
    with caplog.at_level(logging.INFO, logger="trainer"):
        phase1(vimeo, tmp_path / "second", tmp_path / "ckpt", "--epochs", "1", "--resume")
    assert "already at epoch 1, past --epochs 1: nothing to train" in [
        r.getMessage() for r in caplog.records]


def test_resume_without_a_checkpoint_is_one_clear_line(vimeo, tmp_path, capsys):
    assert train.main(["--phase", "1", "--vimeo_path", str(vimeo), "--resume",
                       *smoke_args(tmp_path)]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []      # neither folder made


def test_torchrun_run_resumes_in_one_process(vimeo, tmp_path):
    """Two CPU processes (gloo) train to step 3, in the middle of the second epoch; one process
    resumes to step 4. Only the first process saves (its newest and best checkpoints). The
    epoch's training means then equal an uninterrupted one-process run's: each step counts
    once, however many processes took it (the step-3 sums came from two)."""
    checkpoints = tmp_path / "ckpt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(ROOT / "train.py"), "--phase", "1", "--vimeo_path",
               str(vimeo), "--epochs", "2", "--warmup", "2", "--keep_checkpoints", "1",
               "--max_steps", "3", *smoke_args(tmp_path / "first"), "--model_checkpoints",
               str(checkpoints)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Grad strides" not in result.stderr
    written = sorted(path.name for path in checkpoints.iterdir())
    assert len(written) in (1, 2) and written[-1].startswith("epoch_1_step_3_"), written
    assert read_checkpoint(checkpoints / written[-1])["meta_data"]["world_size"] == 2
    phase1(vimeo, tmp_path / "second", checkpoints, "--resume")
    phase1(vimeo, tmp_path / "whole", tmp_path / "whole_ckpt")
    resumed = read_checkpoint(next(checkpoints.glob("epoch_1_step_4_*.pt")))
    uninterrupted = read_checkpoint(next((tmp_path / "whole_ckpt").glob("epoch_1_step_4_*.pt")))
    assert resumed["train_metric"] == pytest.approx(uninterrupted["train_metric"], rel=2e-4)


def test_resuming_a_checkpoint_of_the_older_per_process_counts(vimeo, tmp_path):
    """Checkpoints written before each step counted once carry sums and counts per process
    and step (no "running_metrics_per"): a resumed run rescales them by the processes then.
    Stand-in: a one-process checkpoint rewritten as two processes would have written it."""
    phase1(vimeo, tmp_path / "whole", tmp_path / "whole_ckpt")
    phase1(vimeo, tmp_path / "first", tmp_path / "ckpt", "--max_steps", "3")
    (path,) = [p for p in (tmp_path / "ckpt").glob("*.pt") if "_step_3" in p.name]
    old = read_checkpoint(path)
    del old["running_metrics_per"]
    old["meta_data"]["world_size"] = 2
    for sums in old["running_metrics"].values():
        sums["sums"] = {name: 2 * value for name, value in sums["sums"].items()}
        sums["count"] *= 2
    torch.save(old, path)
    phase1(vimeo, tmp_path / "second", tmp_path / "ckpt", "--resume")
    resumed = read_checkpoint(next((tmp_path / "ckpt").glob("epoch_1_step_4_*.pt")))
    uninterrupted = read_checkpoint(next((tmp_path / "whole_ckpt").glob("epoch_1_step_4_*.pt")))
    assert resumed["train_metric"] == pytest.approx(uninterrupted["train_metric"], rel=1e-6)


def test_keep_checkpoints_leaves_the_newest_and_the_best(vimeo, tmp_path):
    """--keep_checkpoints 1 (phase1's) with a validation every step: of the four checkpoints
    this run saves, the last and the best by logged validation PSNR remain (the same step in
    this run; the choice itself is checked by hand below). Resuming then continues from the
    newest and goes on pruning the first run's files; a file neither run wrote stays."""
    checkpoints = tmp_path / "ckpt"
    phase1(vimeo, tmp_path / "run", checkpoints, "--val_every", "1")
    psnr = read_scalars(tmp_path / "run" / "runs", "val/psnr")
    assert sorted(psnr) == [1, 2, 3, 4]
    best = max(sorted(psnr), key=lambda step: (psnr[step], -step))
    steps = {int(path.name.split("_step_")[1].split("_")[0]) for path in checkpoints.glob("*.pt")}
    assert steps == {best, 4}
    foreign = checkpoints / "epoch_0_step_0_psnr_99.0.pt"
    foreign.write_bytes(b"not ours")
    phase1(vimeo, tmp_path / "more", checkpoints, "--epochs", "3", "--resume",
           "--val_every", "1")
    assert sorted(read_scalars(tmp_path / "more" / "runs", "train/loss")) == [5, 6]
    psnr.update(read_scalars(tmp_path / "more" / "runs", "val/psnr"))
    best = max(sorted(psnr), key=lambda step: (psnr[step], -step))
    steps = {int(path.name.split("_step_")[1].split("_")[0])
             for path in checkpoints.glob("*.pt") if path != foreign}
    assert steps == {best, 6}          # the first run's checkpoints weighed too
    assert foreign.read_bytes() == b"not ours"


def test_keep_checkpoints_refuses_a_negative_count(vimeo, tmp_path, capsys):
    args = ["--phase", "1", "--vimeo_path", str(vimeo), *smoke_args(tmp_path),
            "--keep_checkpoints", "-1"]
    assert train.main(args) == 1
    assert capsys.readouterr().err.strip() == (
        "error: --keep_checkpoints must be at least 0, got -1")


@pytest.mark.parametrize("psnrs, newest, kept", [
    ([30.0, 32.0, 31.0, 29.0], 1, {1, 3}),
    ([30.0, 32.0, 31.0, 29.0], 2, {1, 2, 3}),
    ([30.0, 32.0, 31.0, 29.0], 5, {0, 1, 2, 3}),
    ([30.0, 32.0, 32.0, 29.0], 1, {1, 3}),              # the earlier of two equal bests
    ([-math.inf, -math.inf, -math.inf], 1, {2}),        # never validated: the newest only
    ([33.0], 1, {0}),
])
def test_checkpoints_to_keep_by_hand(psnrs, newest, kept):
    assert checkpoints_to_keep([("val", psnr) for psnr in psnrs], newest) == kept


def test_checkpoints_to_keep_the_best_of_each_validation_set():
    """Phase 3 alternates Vimeo90K (PSNR ~36) and SNU-FILM hard (~30) epochs: the best of each
    stays, since their PSNRs do not compare."""
    saved = [("val_vimeo", 36.1), ("val_snufilm", 30.2), ("val_vimeo", 36.3),
             ("val_snufilm", 30.1), ("val_vimeo", 36.2), ("val_snufilm", 30.0)]
    assert checkpoints_to_keep(saved, 1) == {1, 2, 5}


def test_unwritable_checkpoint_folder_fails_before_training(vimeo, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    args = ["--phase", "1", "--vimeo_path", str(vimeo), *smoke_args(tmp_path),
            "--model_checkpoints", str(blocker / "checkpoints")]
    assert train.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --model_checkpoints {blocker}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_sigterm_stops_cleanly_and_leaves_whole_checkpoints(vimeo, tmp_path):
    """SIGTERM (kill, a scheduler's time limit) while a run validates and saves every step:
    exit status 143, one line saying how to go on, no half-written checkpoint."""
    checkpoints = tmp_path / "checkpoints"
    command = [sys.executable, str(ROOT / "train.py"), "--phase", "1", "--vimeo_path",
               str(vimeo), "--epochs", "100", "--val_every", "1", *smoke_args(tmp_path)]
    process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("*.pt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(checkpoints.glob("*.pt")), "no checkpoint within two minutes"
    process.terminate()
    err = process.communicate(timeout=60)[1]
    assert process.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == "terminated; --resume continues from the last checkpoint"
    assert "Traceback" not in err
    assert not list(checkpoints.glob(".*.part"))
    for path in checkpoints.glob("*.pt"):
        read_checkpoint(path)


def test_resume_with_another_batch_size_skips_no_samples(tmp_path, caplog):
    """Stopped after 2 steps of batch 2 (4 of the epoch's 8 samples), resumed at batch 4: the
    epoch goes on after one batch of 4 and ends with the next step, instead of counting 2
    batches of 4 as done (all 8 samples) and skipping the other 4."""
    vimeo = make_vimeo(tmp_path / "vimeo", train=8, test=1)
    phase1(vimeo, tmp_path / "first", tmp_path / "ckpt", "--max_steps", "2")
    with caplog.at_level(logging.INFO, logger="trainer"):
        phase1(vimeo, tmp_path / "second", tmp_path / "ckpt", "--resume", "--batch_size", "4",
               "--max_steps", "3")
    assert any("had trained on 4 of its samples; it goes on after 1 batches of 4" in
               r.getMessage() for r in caplog.records)
    resumed = read_checkpoint(next((tmp_path / "ckpt").glob("epoch_*_step_3_*.pt")))
    assert resumed["position"] == [1, 0] and resumed["position_samples"] == 0


def test_a_new_run_refuses_another_runs_checkpoints_and_replaces_stale_curves(vimeo, tmp_path,
                                                                             capsys, caplog):
    """Without --resume, a run does not mix its checkpoints with an earlier run's. Logs alone
    (a run stopped before its first checkpoint) do not block the rerun: its curves replace
    them."""
    phase1(vimeo, tmp_path / "first", tmp_path / "ckpt", "--max_steps", "1")
    capsys.readouterr()
    again = ["--phase", "1", "--vimeo_path", str(vimeo), *smoke_args(tmp_path / "first"),
             "--model_checkpoints", str(tmp_path / "ckpt")]
    before = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert train.main(again) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: --model_checkpoints {tmp_path / 'ckpt'} already holds another run's "
        f"checkpoints ({before[0]}): continue that run with --resume, or give another folder"]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == before
    first_lr = read_scalars(tmp_path / "first" / "runs", "train/lr")
    assert train.main([*again, "--model_checkpoints", str(tmp_path / "new"), "--max_steps", "2",
                       "--epochs", "2", "--warmup", "2", "--init_lr", "1e-3"]) == 0
    assert any("holds TensorBoard logs of an earlier run: this run's curves replace them" in
               r.getMessage() for r in caplog.records)
    events = EventAccumulator(str(tmp_path / "first" / "runs"))
    events.Reload()
    steps_and_lrs = [(event.step, event.value) for event in events.Scalars("train/lr")]
    assert [step for step, _ in steps_and_lrs] == [1, 2]     # the first run's step 1 purged
    assert steps_and_lrs[0][1] != first_lr[1]

