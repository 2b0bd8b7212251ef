"""The four training phases, run from their command lines on tiny real-clip datasets (CPU,
lite, 64x64 crops, a few steps each)."""
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torchvision

import demo_2x
import finetune
import train
from network import UserError, interpolate, load_network, read_checkpoint
from network.video import read_image
from training_data import logged_tags, make_vimeo, read_scalars, smoke_args


@pytest.fixture(scope="module")
def data(training_roots):
    return training_roots


def only_checkpoint(folder):
    paths = sorted((folder / "checkpoints").glob("*.pt"))
    assert len(paths) == 1, paths
    return paths[0]


@pytest.fixture(scope="module")
def phase1_ckpt(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("phase1")
    assert train.main(["--phase", "1", "--vimeo_path", str(data["vimeo"]), "--epochs", "1",
                       *smoke_args(run)]) == 0
    return only_checkpoint(run)


@pytest.fixture(scope="module")
def phase2_ckpt(data, phase1_ckpt, tmp_path_factory):
    run = tmp_path_factory.mktemp("phase2")
    assert train.main(["--phase", "2", "--x4k_path", str(data["x4k"]), "--init_ckpt",
                       str(phase1_ckpt), "--snufilm_path", str(data["snufilm"]), "--epochs", "1",
                       *smoke_args(run)]) == 0
    return only_checkpoint(run)


def test_phase1_overfits_two_triplets(tmp_path):
    # The two triplets, listed 16 times: one epoch of 16 steps on fixed 64x64 frames.
    vimeo = make_vimeo(tmp_path / "vimeo", size=(64, 64), repeat=16)
    assert train.main(["--phase", "1", "--vimeo_path", str(vimeo), "--epochs", "1",
                       "--init_lr", "5e-4", "--last_lr", "5e-4", "--warmup", "4", "--no-augment",
                       *smoke_args(tmp_path)]) == 0
    losses = list(read_scalars(tmp_path / "runs", "train/loss").values())
    assert len(losses) == 16
    first, last = losses[0], sum(losses[-4:]) / 4
    assert last < 0.85 * first and last < 0.8 * sum(losses[:4]) / 4, losses


def test_phase1_checkpoint_has_the_authors_layout(phase1_ckpt):
    checkpoint = read_checkpoint(phase1_ckpt)
    assert {"model_state_dict", "optimizer_state_dict", "meta_data", "train_metric",
            "val_metric"} <= set(checkpoint)
    assert list(checkpoint["train_metric"])[:3] == ["psnr", "lap_loss", "warping_loss"]
    assert checkpoint["meta_data"]["initial learning rate"] == 2e-4
    assert checkpoint["meta_data"]["phase"] == 1
    assert phase1_ckpt.name.startswith("epoch_0_step_1_psnr_")
    assert not list(phase1_ckpt.parent.glob(".*.part"))


def test_phase2_trains_only_the_global_branch(phase1_ckpt, phase2_ckpt):
    before = read_checkpoint(phase1_ckpt)["model_state_dict"]
    after = read_checkpoint(phase2_ckpt)
    model = load_network(phase2_ckpt)
    global_names = {f"{name}.{key}" for name in ("last_feat_extract", "global_feature_fusion",
                                                 "global_motion_atmformer", "global_motion_mlp")
                    for key, _ in getattr(model, name).named_parameters()}
    changed = {name for name, _ in model.named_parameters()
               if not torch.equal(before[name], after["model_state_dict"][name])}
    assert changed and changed <= global_names        # every local parameter bit-identical
    assert "psnr" in after["val_metric"]              # validated on SNU-FILM (padded, unpadded)
    assert after["meta_data"]["global_motion"] is True


def test_phase3_alternates_vimeo_and_x4k(data, phase2_ckpt, tmp_path, caplog):
    assert finetune.main(["--phase", "3", "--init_ckpt", str(phase2_ckpt), "--vimeo_path",
                          str(data["vimeo"]), "--x4k_path", str(data["x4k"]), "--snufilm_path",
                          str(data["snufilm"]), "--epochs", "2", "--x4k_batch_size", "2",
                          "--x4k_crop", "64", "--vgg_weights", str(tmp_path / "vgg19.pth"),
                          *smoke_args(tmp_path)]) == 0
    assert "--vgg_weights: not used, as the perceptual and style weights are 0 (phase 3)" in [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    names = sorted(p.name.split("_step")[0] for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert names == ["vimeo_epoch_0", "x4k_epoch_1"]
    assert {"val_vimeo/psnr", "val_snufilm/psnr", "val_vimeo/images", "val_snufilm/images",
            "train/loss", "train/lr", "train/warping_loss"} <= logged_tags(tmp_path / "runs")
    # The phase-2 AdamW state went on: global parameters count 1 + 2 steps, local ones 2.
    final = read_checkpoint(next((tmp_path / "checkpoints").glob("x4k_*.pt")))
    model = load_network(phase2_ckpt)
    names = [name for name, _ in model.named_parameters()]
    steps = {names[i]: int(state["step"]) for i, state in
             final["optimizer_state_dict"]["state"].items()}
    assert steps["global_motion_mlp.2.weight"] == 3 and steps["refine_head.1.0.weight"] == 2


def test_phase4_adds_perceptual_and_style_losses(data, lite_ckpt, tmp_path):
    vgg = tmp_path / "vgg19.pth"
    features = torchvision.models.vgg19(init_weights=False).features.state_dict()
    torch.save({f"features.{k}": v for k, v in features.items()}, vgg)
    command = ["--phase", "4", "--init_ckpt", str(lite_ckpt), "--vimeo_path", str(data["vimeo"]),
               "--x4k_path", str(data["x4k"]), "--x4k_crop", "64", "--x4k_batch_size", "2",
               "--max_steps", "1",
               *smoke_args(tmp_path)]
    assert finetune.main(command + ["--vgg_weights", str(vgg)]) == 0
    metric = read_checkpoint(only_checkpoint(tmp_path))["train_metric"]
    assert list(metric)[:5] == ["psnr", "lap_loss", "perceptual_loss", "style_loss",
                                "warping_loss"]
    assert metric["perceptual_loss"] > 0 and metric["style_loss"] > 0


def test_phase4_without_vgg_weights_is_one_clear_line(data, tmp_path, capsys):
    assert finetune.main(["--phase", "4", "--vimeo_path", str(data["vimeo"]), "--x4k_path",
                          str(data["x4k"]), "--vgg_weights", str(tmp_path / "missing.pth"),
                          *smoke_args(tmp_path)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: VGG19 weights file not found") and "missing.pth" in last


@pytest.mark.parametrize("script, argv, message", [
    (train, ["--phase", "1", "--batch_size", "0"], "--batch_size must be at least 1, got 0"),
    (train, ["--phase", "1", "--crop", "50"], "--crop 50: this phase's network takes crops of a "
                                              "multiple of 8 pixels, at least 16"),
    (train, ["--phase", "1", "--crop", "8"], "--crop 8: this phase's network takes crops of a "
                                             "multiple of 8 pixels, at least 16"),
    (train, ["--phase", "2", "--crop", "72"], "multiple of 16 pixels, at least 32"),
    (train, ["--phase", "2", "--crop", "16"], "multiple of 16 pixels, at least 32"),
    (train, ["--phase", "1", "--epochs", "0"], "--epochs must be at least 1, got 0"),
    (finetune, ["--phase", "3", "--x4k_crop", "40"], "--x4k_crop 40"),
    (finetune, ["--phase", "3", "--x4k_batch_size", "-1"], "--x4k_batch_size must be at least 1"),
    (train, ["--phase", "1", "--log_every", "0"], "--log_every must be at least 1, got 0"),
    (train, ["--phase", "1", "--lap_levels", "0"], "--lap_levels must be at least 1, got 0"),
    (train, ["--phase", "1", "--init_lr", "0"], "--init_lr must be more than 0, got 0.0"),
    (train, ["--phase", "1", "--init_lr", "inf"], "--init_lr must be a finite number, got inf"),
    (train, ["--phase", "1", "--warp_weight", "inf"], "--warp_weight must be a finite number"),
    (train, ["--phase", "1", "--ema", "1.5"], "--ema must be at least 0 and less than 1, got 1.5"),
    (train, ["--phase", "1", "--num_workers", "-1"], "--num_workers must be at least 0, got -1"),
    (train, ["--phase", "1", "--max_steps", "-1"], "--max_steps must be at least 0, got -1"),
    (finetune, ["--phase", "4", "--style_weight", "-1"], "--style_weight must be at least 0"),
    (train, ["--phase", "1", "--seed", "-1"], "--seed must be from 0 to 4294967295, got -1"),
    (train, ["--phase", "1", "--seed", str(2**64)], "--seed must be from 0 to 4294967295"),
])
def test_impossible_settings_are_one_line(data, tmp_path, capsys, script, argv,
                                                          message):
    paths = ["--vimeo_path", str(data["vimeo"]), "--x4k_path", str(data["x4k"])]
    assert script.main([*argv[:2], *paths, *smoke_args(tmp_path), *argv[2:]]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("script, argv, message", [
    (train, ["--phase", "1", "--vimeo_path", "VIMEO", "--x4k_path", "X4K", "--x4k_odd_steps"],
     "--x4k_path, --x4k_odd_steps: not used by phase 1, which trains on Vimeo90K"),
    (train, ["--phase", "2", "--x4k_path", "X4K", "--synthetic_path", "VIMEO"],
     "--synthetic_path: not used by phase 2, which trains on X4K1000FPS"),
    (train, ["--phase", "1", "--vimeo_path", "VIMEO", "--synthetic_path", "VIMEO"],
     "give --vimeo_path or --synthetic_path, not both"),
    (finetune, ["--phase", "3", "--vimeo_path", "VIMEO"],
     "this phase needs --x4k_path DIR (the X4K1000FPS training root)"),
])
def test_data_flags_the_phase_would_ignore_or_lacks_are_one_line(data, tmp_path, capsys, script,
                                                                argv, message):
    """Checked before anything is read, so the error is the only line (no warning about a
    missing --init_ckpt before it)."""
    argv = [{"VIMEO": str(data["vimeo"]), "X4K": str(data["x4k"])}.get(a, a) for a in argv]
    assert script.main([*argv, *smoke_args(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "checkpoints").exists()


def test_init_ckpt_of_another_network_is_one_line_naming_it(data, tmp_path, capsys):
    foreign = tmp_path / "classifier.pt"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3)}, foreign)
    assert train.main(["--phase", "1", "--vimeo_path", str(data["vimeo"]), "--init_ckpt",
                       str(foreign), *smoke_args(tmp_path)[2:]]) == 1   # no --model_type
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {foreign}: not an ATM-VFI state_dict (no feat_extracts.0.0.0.weight)"]


def test_x4k_batch_must_split_across_processes(data, tmp_path, capsys, monkeypatch):
    # Under torchrun (WORLD_SIZE) each process takes batch / processes samples: 3 over 2 would
    # silently train on 2, so it is refused before anything is read.
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert finetune.main(["--phase", "3", "--vimeo_path", str(data["vimeo"]), "--x4k_path",
                          str(data["x4k"]), *smoke_args(tmp_path), "--batch_size", "2",
                          "--x4k_batch_size", "3"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --x4k_batch_size 3 is not divisible by the 2 processes (it counts all of them "
        "together)"]
    assert not (tmp_path / "checkpoints").exists()


def test_training_checkpoint_runs_in_the_demo(data, phase1_ckpt, tmp_path):
    frames = sorted((data["vimeo"] / "sequences").rglob("im*.png"))[:3]
    out = tmp_path / "middle.png"
    assert demo_2x.main(["--frame0", str(frames[0]), "--frame1", str(frames[2]), "--out", str(out),
                         "--ckpt", str(phase1_ckpt), "--model_type", "lite",
                         "--device", "cpu"]) == 0
    # Phase 1 never trains the global branch, and the checkpoint says so: it runs without it.
    model = load_network(phase1_ckpt)
    assert not model.global_motion
    expected = interpolate(read_image(frames[0]), read_image(frames[2]), model)
    np.testing.assert_array_equal(read_image(out), expected)


def test_checkpoints_with_a_trained_global_branch_run_it(phase2_ckpt, lite_ckpt):
    assert load_network(phase2_ckpt).global_motion            # meta_data: global_motion True
    assert load_network(lite_ckpt).global_motion              # authors' layout, no such meta_data
    assert not load_network(phase2_ckpt, global_motion=False).global_motion


@pytest.mark.parametrize("script, phase, default", [(train, "2", "448"),
                                                    (finetune, "4", "0.05")])
def test_help_shows_the_phase_defaults(script, phase, default, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--phase", phase, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--init_ckpt", "--model_checkpoints", "--resume", "--amp", "--max_steps",
                 "--val_every", "--num_workers", "--crop", "--batch_size", "--warmup"):
        assert flag in text
    assert f"(default: {default})" in text
    assert "(default: None)" not in text      # unset flags' help says what leaving them out does


@pytest.mark.parametrize("script, argv, message", [
    (train, ["--phase", "7"], "error: argument --phase: invalid choice: 7 (choose from 1, 2)"),
    (finetune, ["--phase", "4", "--batch_size", "x"],
     "error: argument --batch_size: invalid int value: 'x'"),
    (finetune, ["--phase", "3", "--frames"], "error: unrecognized arguments: --frames")])
def test_flag_mistakes_are_one_line_and_exit_1(script, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(argv)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"{message} (see --help)\n"


@pytest.mark.parametrize("rank, printed", [("0", True), ("1", False)])
def test_under_torchrun_only_the_first_process_reports(monkeypatch, capsys, rank, printed):
    """An error before the processes join (the settings) is met by every process: one line in
    all, from rank 0. A process whose peers stopped (gloo: "Connection closed by peer") exits
    with 1 and no traceback of its own."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)

    def refuse(args):
        raise UserError("the same error everywhere")

    def peer_gone(args):
        raise RuntimeError("[gloo/transport/tcp/pair.cc:534] Connection closed by peer [::1]:1")

    assert train.run_cli(["--phase", "1"], "", train.PHASES, lambda _: None, refuse) == 1
    assert train.run_cli(["--phase", "1"], "", train.PHASES, lambda _: None, peer_gone) == 1
    expected = (["error: the same error everywhere",
                 "error: another training process stopped (see its message)"]
                if printed else [])
    assert capsys.readouterr().err.splitlines() == expected


def test_an_error_after_joining_is_printed_by_its_process(monkeypatch, capsys):
    """After the processes have joined, an error may be one process's own (a damaged image in
    its share of the data): that process prints it, naming itself."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")

    def damaged(args):
        raise UserError("cannot read image im2.png (missing or not an image)")

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        assert train.run_cli(["--phase", "1"], "", train.PHASES, lambda _: None, damaged) == 1
    finally:
        dist.destroy_process_group()
    assert capsys.readouterr().err.splitlines() == [
        "error (process 1): cannot read image im2.png (missing or not an image)"]


def test_a_runtime_error_of_one_process_is_not_hidden(monkeypatch):
    def broken(args):
        raise RuntimeError("Connection closed by peer")     # no peers: a real error
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError):
        train.run_cli(["--phase", "1"], "", train.PHASES, lambda _: None, broken)
