"""Known-motion triplets: frames, true flows and the Vimeo90K-layout writer, checked against
motions worked out by hand and against the frames themselves."""
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import train
from dataset import KnownMotionTriplet, synthetic, write_known_motion
from dataset.synthetic import (KINDS, TEST_PHOTOS, TRAIN_PHOTOS, Layer, Motion, Scene, draw_scene,
                               photograph, pixel_grid)
from network import UserError, warp_backward
from training_data import make_vimeo


def texture(height: int = 40, width: int = 48) -> np.ndarray:
    """A crop of a training photograph, H x W x 3 float64."""
    return photograph("astronaut")[100:100 + height, 200:200 + width]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a - b) ** 2)))


def warp(frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """H x W x 3 frame sampled at p + flow(p) ([2, H, W]) with the network's bilinear warp."""
    image = torch.from_numpy(frame.transpose(2, 0, 1).copy())[None]
    return warp_backward(image, torch.from_numpy(flow).double()[None])[0].numpy().transpose(1, 2, 0)


def test_whole_pixel_translation_moves_the_photograph_by_half_a_shift_each_way():
    photo = texture()
    # Moves 4 px right and 2 px up from frame 0 to frame 1; middle pixel (0, 0) is photo (5, 6).
    scene = Scene([Layer(photo, Motion(shift=(4.0, -2.0)), offset=(5.0, 6.0))], 24, 32)
    im0, mid, im1 = (scene.frame(e) for e in (-0.5, 0.0, 0.5))
    np.testing.assert_allclose(mid, photo[6:30, 5:37], atol=1e-12)
    np.testing.assert_allclose(im0, photo[6 - 1:30 - 1, 5 + 2:37 + 2], atol=1e-12)
    np.testing.assert_allclose(im1, photo[6 + 1:30 + 1, 5 - 2:37 - 2], atol=1e-12)
    flow_t0, flow_t1, valid = scene.flows()
    # Middle pixel p is at p - (2, -1) in frame 0 and at p + (2, -1) in frame 1.
    assert (flow_t0[0] == -2).all() and (flow_t0[1] == 1).all()
    assert (flow_t1[0] == 2).all() and (flow_t1[1] == -1).all()
    # Valid: the source stays 2 px inside both frames: x - 2 >= 2 and x + 2 <= 29, etc.
    expected = np.zeros((24, 32), dtype=bool)
    expected[3:21, 4:28] = True
    np.testing.assert_array_equal(valid, expected)


def test_rotation_and_zoom_flows_match_the_closed_form():
    angle, zoom, centre = math.radians(4.0), math.log(1.1), (10.0, 8.0)
    scene = Scene([Layer(texture(), Motion(angle=angle, zoom=zoom, centre=centre),
                         offset=(8.0, 8.0))], 20, 24)
    flow_t0, flow_t1, _ = scene.flows()
    assert np.abs(flow_t0[:, 8, 10]).max() < 1e-6                        # the fixed point
    # 10 px right of the centre: at pose e the point is scaled by 1.1^e and turned by e * 4
    # degrees (clockwise on screen, y down).
    for e, flow in ((-0.5, flow_t0), (0.5, flow_t1)):
        scale = 1.1 ** e
        expected = (10 * scale * math.cos(e * angle) - 10, 10 * scale * math.sin(e * angle))
        np.testing.assert_allclose(flow[:, 8, 20], expected, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_true_flows_carry_the_outer_frames_onto_the_middle_one(kind):
    rng = np.random.default_rng(7)
    scene = draw_scene(rng, kind, TEST_PHOTOS, 64, 64, max_shift=6.0)
    im0, mid, im1 = (scene.frame(e) for e in (-0.5, 0.0, 0.5))
    flow_t0, flow_t1, valid = scene.flows()
    assert 0.3 < valid.mean() < 1
    average = psnr(((im0 + im1) / 2)[valid], mid[valid])
    for frame, flow in ((im0, flow_t0), (im1, flow_t1)):
        # Exact up to re-interpolating the photograph bilinearly.
        assert psnr(warp(frame, flow)[valid], mid[valid]) > max(30.0, average + 10)
    if kind == "layers":
        # Background pixels that the ellipse covers in frame 0 are not valid, and the true
        # flow finds the ellipse's photograph there instead.
        background, ellipse = scene.layers
        points = pixel_grid(64, 64)
        there = background.motion.forward(points, -0.5)                  # in frame 0
        hidden = (ellipse.signed_distance(points) > 3) & (
            ellipse.coverage(ellipse.motion.inverse(there, -0.5)) == 1)
        hidden &= ((there > 2) & (there < 61)).all(axis=-1)
        assert hidden.sum() > 20 and not valid[hidden].any()
        assert np.abs(warp(im0, flow_t0) - mid)[hidden].mean() > 0.05


def test_writer_makes_a_deterministic_vimeo_layout_with_true_flows(tmp_path):
    first = write_known_motion(tmp_path / "a", train=3, test=3, size=(64, 64), seed=5)
    second = write_known_motion(tmp_path / "b", train=3, test=3, size=(64, 64), seed=5)
    assert (first / "tri_trainlist.txt").read_text().split() == ["00001/0001", "00001/0002",
                                                                  "00001/0003"]
    assert (first / "tri_testlist.txt").read_text().split()[0] == "00002/0001"
    for name in ("00001/0002/im1.png", "00002/0003/im3.png", "00002/0001/flow_t1.npy"):
        assert (first / "sequences" / name).read_bytes() == (second / "sequences" / name).read_bytes()
    assert not (first / "sequences" / "00001/0001/flow_t0.npy").exists()   # test split only

    test = KnownMotionTriplet(first, "test")
    im0, gt, im1, flow, valid = test[2]                                  # a "layers" scene
    assert im0.shape == gt.shape == (3, 64, 64) and flow.shape == (4, 64, 64)
    assert valid.shape == (1, 64, 64) and set(valid.unique().tolist()) == {0.0, 1.0}
    scene = draw_scene(np.random.default_rng((5, True, 2)), "layers", TEST_PHOTOS, 64, 64, 6.0)
    flow_t0, flow_t1, mask = scene.flows()
    np.testing.assert_array_equal(flow.numpy(), np.concatenate((flow_t0, flow_t1)))
    np.testing.assert_array_equal(valid[0].numpy() == 1, mask)
    train_items = KnownMotionTriplet(first, "train", crop=32, seed=1)
    assert [t.shape for t in train_items[0]] == [(3, 32, 32)] * 3


def test_held_out_photographs_are_not_training_photographs():
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    # Not the same picture under another name either.
    shapes = {name: photograph(name).shape for name in TRAIN_PHOTOS + TEST_PHOTOS}
    for held_out in TEST_PHOTOS:
        for seen in TRAIN_PHOTOS:
            assert shapes[held_out] != shapes[seen] or not np.array_equal(
                photograph(held_out), photograph(seen))


def test_train_cli_names_the_writer_when_the_set_is_missing(tmp_path, capsys):
    assert train.main(["--synthetic_path", str(tmp_path / "none"), "--model_type", "lite",
                       "--device", "cpu", "--log_dir", str(tmp_path / "runs"),
                       "--model_checkpoints", str(tmp_path / "ck")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "python -m dataset.synthetic" in error


def test_a_set_without_true_flows_is_refused_before_training(tmp_path):
    """A plain Vimeo90K layout given as --synthetic_path: its test triplets lack the flows
    validation needs, which is said before the first step, not at the first validation."""
    root = make_vimeo(tmp_path / "plain", train=1, test=1)
    KnownMotionTriplet(root, "train", crop=64)
    with pytest.raises(UserError, match="true flow not found: expected the file .*flow_t0.npy"):
        KnownMotionTriplet(root, "test")


def test_writer_command_runs_without_warnings(tmp_path):
    """`python -m dataset.synthetic` as the README gives it: no RuntimeWarning about the module
    being imported by its package first (warnings are errors here), a written set (too quick
    for the progress bar, which waits 2 s)."""
    result = subprocess.run([sys.executable, "-W", "error", "-m", "dataset.synthetic",
                             str(tmp_path / "set"), "--train", "1", "--test", "1",
                             "--size", "32", "32"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / "set" / "sequences" / "00002" / "0001" / "flow_t0.npy").is_file()


def test_an_unfinished_rewrite_leaves_no_set(tmp_path):
    """Writing over a set removes its lists first and writes them last: a rewrite that fails
    half way (here the test folder cannot be made) leaves no set, not old lists over new files."""
    root = write_known_motion(tmp_path / "set", train=2, test=2, size=(32, 32))
    (root / "sequences" / "00002" / "0002").rename(tmp_path / "moved")
    (root / "sequences" / "00002" / "0002").write_text("in the way")
    with pytest.raises(OSError):
        write_known_motion(root, train=2, test=2, size=(32, 32), seed=1)
    assert not (root / "tri_trainlist.txt").exists() and not (root / "tri_testlist.txt").exists()


def test_writer_command_names_what_it_cannot_write(tmp_path, capsys):
    root = write_known_motion(tmp_path / "set", train=1, test=1, size=(32, 32))
    shutil.rmtree(root / "sequences" / "00001")
    (root / "sequences" / "00001").write_text("a file where the folders go")
    assert synthetic.main([str(tmp_path / "set"), "--train", "1", "--test", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {tmp_path / 'set'}"), err


@pytest.mark.parametrize("argv, message", [
    (["--train", "0", "--test", "0"], "needs training and test triplets, got 0 and 0"),
    (["--max_shift", "-3"], "largest shift must be a number of pixels from 0 up"),
    (["--max_shift", "nan"], "largest shift must be a number of pixels from 0 up, got nan"),
    (["--max_shift", "inf"], "largest shift must be a number of pixels from 0 up, got inf"),
    (["--seed", "-1"], "the seed must be at least 0, got -1"),
    (["--size", "8", "8"], "8x8 pixels are too small"),
    (["--size", "700", "700", "--train", "1", "--test", "1"], "photograph is too small"),
])
def test_writer_refuses_an_impossible_set_in_one_line(tmp_path, capsys, argv, message):
    assert synthetic.main([str(tmp_path / "set"), *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "set" / "tri_trainlist.txt").exists()


def test_writer_refuses_a_folder_holding_other_files(tmp_path, capsys):
    """A Vimeo90K copy (here its layout made by hand) is never written over; a set written
    before is (re-running the command with other settings replaces it)."""
    vimeo = tmp_path / "vimeo"
    frame = vimeo / "sequences" / "00001" / "0001" / "im1.png"
    frame.parent.mkdir(parents=True)
    frame.write_bytes(b"a Vimeo90K frame")
    (vimeo / "tri_trainlist.txt").write_text("00001/0001\n")
    assert synthetic.main([str(vimeo), "--train", "1", "--test", "1", "--size", "32", "32"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {vimeo} holds files that are not a known-motion set (a Vimeo90K "
                   "copy?); give a new or empty folder, or one this command wrote before"]
    assert frame.read_bytes() == b"a Vimeo90K frame"
    assert (vimeo / "tri_trainlist.txt").read_text() == "00001/0001\n"
    root = write_known_motion(tmp_path / "set", train=2, test=1, size=(32, 32))
    write_known_motion(root, train=1, test=1, size=(32, 32), seed=1)
    assert (root / "tri_trainlist.txt").read_text() == "00001/0001\n"
