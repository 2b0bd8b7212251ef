"""Benchmark scripts as a user meets them: flags, mistakes, test-time augmentation, --limit."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from benchmark import test_snufilm, test_ucf101, test_vimeo90k, test_xiph
from benchmark.metrics import psnr, ssim_matlab
from network import load_network

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "benchmarks" / "public"
MAINS = {"vimeo90k": test_vimeo90k.main, "ucf101": test_ucf101.main,
         "snufilm": test_snufilm.main, "xiph": test_xiph.main}
DATASET_FLAGS = {"vimeo90k": ["--path", "--TTA_swaporder"], "ucf101": ["--path"],
                 "snufilm": ["--path", "--img_data_path", "--modes"], "xiph": ["--root", "--res"]}
COMMON_FLAGS = ["--ckpt", "--model_type", "--device", "--precision", "--TTA", "--limit", "--json"]


def error_line(capsys) -> str:
    """The single line a failed run printed on stderr."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def small_frames(count: int) -> list[np.ndarray]:
    """`count` consecutive 64x64 RGB frames: a window sliding right by 2 px over a real frame."""
    frame = cv2.imread(str(FIXTURES / "vimeo_triplet/sequences/00001/0001/im1.png"))
    return [frame[100:164, 150 + 2 * i:214 + 2 * i] for i in range(count)]


def write_vimeo(root: Path, entries: list[str]) -> Path:
    """A Vimeo90K-layout dataset of 64x64 triplets; the list ends with a blank line."""
    frames = small_frames(3)
    for entry in entries:
        folder = root / "sequences" / entry
        folder.mkdir(parents=True)
        for number, frame in enumerate(frames, start=1):
            cv2.imwrite(str(folder / f"im{number}.png"), frame)
    (root / "tri_testlist.txt").write_text("\n".join(entries) + "\n\n")
    return root


def to_tensor(bgr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1)[None] / 255.0


@pytest.mark.parametrize("dataset", MAINS)
def test_help_lists_the_flags(dataset, capsys):
    with pytest.raises(SystemExit) as exit_info:
        MAINS[dataset](["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in COMMON_FLAGS + DATASET_FLAGS[dataset]:
        assert flag in text


def test_script_runs_as_a_file_from_the_readme_command():
    result = subprocess.run([sys.executable, "benchmark/test_xiph.py", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--root" in result.stdout and "--res" in result.stdout


def test_missing_root_is_one_line_and_exit_1_from_the_command_line(tmp_path):
    missing = tmp_path / "nowhere"
    result = subprocess.run([sys.executable, "benchmark/test_vimeo90k.py", "--path", str(missing),
                             "--ckpt", str(tmp_path / "x.pt")], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "tri_testlist.txt" in lines[0]


@pytest.mark.parametrize(("dataset", "flags"), [
    ("vimeo90k", ["--path", "{missing}"]),
    ("ucf101", ["--path", "{missing}"]),
    ("snufilm", ["--path", "{missing}", "--img_data_path", "{tmp}"]),
    ("snufilm", ["--path", "{tmp}", "--img_data_path", "{missing}"]),
    ("xiph", ["--root", "{missing}"]),
])
def test_missing_dataset_root_fails_with_one_line(dataset, flags, tmp_path, capsys):
    missing = tmp_path / "missing"
    argv = [flag.format(missing=missing, tmp=tmp_path) for flag in flags]
    out = tmp_path / "out.json"
    assert MAINS[dataset](argv + ["--ckpt", str(tmp_path / "x.pt"), "--json", str(out)]) == 1
    assert str(missing) in error_line(capsys)
    assert not out.exists()


def test_vimeo_list_naming_a_missing_sequence(tmp_path, capsys):
    root = write_vimeo(tmp_path / "vimeo", ["00001/0001"])
    (root / "tri_testlist.txt").write_text("00001/0001\n00009/0009\n")
    assert test_vimeo90k.main(["--path", str(root), "--ckpt", str(tmp_path / "x.pt")]) == 1
    line = error_line(capsys)
    assert str(root / "sequences/00009/0009/im1.png") in line and "expected layout" in line


def test_vimeo_list_that_is_not_text(tmp_path, capsys):
    root = write_vimeo(tmp_path / "vimeo", ["00001/0001"])
    (root / "tri_testlist.txt").write_bytes("00001/0001\n".encode("utf-16"))
    assert test_vimeo90k.main(["--path", str(root), "--ckpt", str(tmp_path / "x.pt")]) == 1
    assert error_line(capsys) == (f"error: Vimeo90K test list {root / 'tri_testlist.txt'} is not "
                                  "a text file")


def test_ucf_folder_without_ground_truth(tmp_path, capsys):
    folder = tmp_path / "ucf" / "5"
    folder.mkdir(parents=True)
    for name in ("frame_00.png", "frame_02.png"):
        cv2.imwrite(str(folder / name), small_frames(1)[0])
    assert test_ucf101.main(["--path", str(tmp_path / "ucf"), "--ckpt", str(tmp_path / "x.pt")]) == 1
    assert str(folder / "frame_01_gt.png") in error_line(capsys)


def test_ucf_hidden_and_archive_folders_are_not_triplets(tmp_path):
    root = tmp_path / "ucf"
    for name in ("1", "12", ".ipynb_checkpoints", "__MACOSX"):
        (root / name).mkdir(parents=True)
    splits, _ = test_ucf101.build_splits(test_ucf101.build_parser().parse_args(
        ["--path", str(root), "--ckpt", "lite"]))
    assert [triplet.name for triplet in splits[0].triplets] == ["1", "12"]


def test_snufilm_list_naming_a_missing_frame_and_a_malformed_line(tmp_path, capsys):
    lists = tmp_path / "eval_modes"
    lists.mkdir()
    (lists / "test-hard.txt").write_text(
        "data/SNU-FILM/test/bikes/000050.png data/SNU-FILM/test/bikes/000054.png "
        "data/SNU-FILM/test/bikes/000099.png\n")
    argv = ["--path", str(lists), "--img_data_path", str(FIXTURES / "snufilm"), "--modes", "hard",
            "--ckpt", str(tmp_path / "x.pt")]
    assert test_snufilm.main(argv) == 1
    assert str(FIXTURES / "snufilm/bikes/000099.png") in error_line(capsys)

    (lists / "test-hard.txt").write_text("data/SNU-FILM/test/a.png data/SNU-FILM/test/b.png\n")
    assert test_snufilm.main(argv) == 1
    assert f"{lists / 'test-hard.txt'}:1" in error_line(capsys)


@pytest.mark.parametrize("modes", ["easy,insane", "hard,hard"])
def test_unknown_or_repeated_mode_is_a_usage_error(tmp_path, capsys, modes):
    with pytest.raises(SystemExit) as exit_info:
        test_snufilm.main(["--path", str(tmp_path), "--img_data_path", str(tmp_path),
                           "--modes", modes, "--ckpt", "x.pt"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == ("error: argument --modes: modes are a comma-separated subset "
                                       f"of easy,medium,hard,extreme, got '{modes}' (see --help)\n")


def test_missing_checkpoint_and_json_folder_fail_with_one_line(tmp_path, lite_ckpt, capsys):
    root = write_vimeo(tmp_path / "vimeo", ["00001/0001"])
    assert test_vimeo90k.main(["--path", str(root), "--ckpt", str(tmp_path / "none.pt")]) == 1
    assert str(tmp_path / "none.pt") in error_line(capsys)
    out = tmp_path / "no_such_folder" / "out.json"
    assert test_vimeo90k.main(["--path", str(root), "--ckpt", str(lite_ckpt), "--json", str(out)]) == 1
    assert str(out.parent) in error_line(capsys)


def test_json_report_that_would_replace_a_file_it_reads_is_refused(tmp_path, capsys):
    """--json is checked before the checkpoint is read: never the checkpoint itself, never a
    folder, always .json."""
    root = write_vimeo(tmp_path / "vimeo", ["00001/0001"])
    weights = tmp_path / "weights.json"          # a checkpoint under an unusual name
    weights.write_bytes(b"weights")
    for ckpt, out, message in [(weights, weights, "would replace the input"),
                               (weights, tmp_path, "is a directory"),
                               (tmp_path / "w.pt", tmp_path / "w.pt", "must end in .json")]:
        assert test_vimeo90k.main(["--path", str(root), "--ckpt", str(ckpt),
                                   "--json", str(out)]) == 1
        assert message in error_line(capsys)
    assert weights.read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vimeo", "weights.json"]


def test_limit_and_report_layout(tmp_path, lite_ckpt, device, capsys):
    root = write_vimeo(tmp_path / "vimeo", ["00001/0001", "00001/0002", "00002/0001"])
    out = tmp_path / "out.json"
    assert test_vimeo90k.main(["--path", str(root), "--ckpt", str(lite_ckpt), "--device", str(device),
                               "--limit", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"dataset", "variant", "checkpoint", "device", "protocol", "splits"}
    assert (report["dataset"], report["variant"]) == ("vimeo90k", "lite")
    assert report["protocol"]["global_motion"] is False and report["protocol"]["limit"] == 2
    split = report["splits"]["all"]
    assert split["n"] == 2 and [s["name"] for s in split["per_sample"]] == ["00001/0001", "00001/0002"]
    assert split["psnr"] == pytest.approx(np.mean([s["psnr"] for s in split["per_sample"]]))
    table = capsys.readouterr().out
    assert "Vimeo90K" in table and f"{split['psnr']:.4f}" in table


def test_flip_and_swap_order_tta_average_the_passes(tmp_path, lite_ckpt, capsys):
    """--TTA --TTA_swaporder: ((P + flip P(flipped)) / 2 + (S + flip S(flipped)) / 2) / 2, where S
    is the prediction from the swapped input order."""
    root = write_vimeo(tmp_path / "vimeo", ["00001/0001"])
    frame0, gt, frame1 = (to_tensor(frame) for frame in small_frames(3))
    model = load_network(lite_ckpt, global_motion=False)

    def flipped(a, b):
        return model(a.flip(2, 3), b.flip(2, 3))["I_t"].flip(2, 3)

    with torch.inference_mode():
        plain = model(frame0, frame1)["I_t"]
        flip_tta = (plain + flipped(frame0, frame1)) / 2
        swapped = (model(frame1, frame0)["I_t"] + flipped(frame1, frame0)) / 2
    prediction = (flip_tta + swapped) / 2

    out = tmp_path / "out.json"
    assert test_vimeo90k.main(["--path", str(root), "--ckpt", str(lite_ckpt), "--device", "cpu",
                               "--json", str(out), "--TTA", "--TTA_swaporder"]) == 0
    report = json.loads(out.read_text())
    sample = report["splits"]["all"]["per_sample"][0]
    assert report["protocol"]["tta"] is True and report["protocol"]["tta_swaporder"] is True
    assert "TTA on, swapped order" in capsys.readouterr().out
    assert sample["psnr"] == pytest.approx(psnr(prediction.double(), gt.double()), abs=1e-6)
    assert sample["ssim"] == pytest.approx(ssim_matlab(gt, prediction), abs=1e-6)
    assert abs(sample["psnr"] - psnr(plain.double(), gt.double())) > 1e-3   # TTA changed the score


def test_a_checkpoint_without_a_trained_global_branch_is_named(tmp_path, lite_ckpt, caplog):
    """SNU-FILM runs the global branch (the protocol); a train.py phase-1 checkpoint says its
    branch was never trained, so the run warns instead of quietly scoring an untrained one."""
    checkpoint = torch.load(lite_ckpt, weights_only=True)
    checkpoint["meta_data"] = {**checkpoint["meta_data"], "phase": 1, "global_motion": False}
    phase1 = tmp_path / "phase1.pt"
    torch.save(checkpoint, phase1)
    root = FIXTURES / "snufilm"
    assert test_snufilm.main(["--path", str(root / "eval_modes"), "--img_data_path", str(root),
                              "--modes", "easy", "--limit", "1", "--ckpt", str(phase1),
                              "--device", "cpu"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("trained without the global-motion branch" in w for w in warnings), warnings
