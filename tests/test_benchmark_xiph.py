"""Xiph frame preparation (2K area resize, 4K centre crop) and triplet listing. The Netflix clips
cannot be fetched here, so the end-to-end run uses small synthetic clips."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from benchmark.metrics import psnr, ssim_matlab
from benchmark.test_xiph import CLIPS, clip_triplets, crop_4k, main, resize_2k
from network import load_network

FIXTURES = Path(__file__).resolve().parent / "benchmarks" / "public"


def test_resize_2k_averages_each_2x2_block():
    channel0 = np.array([[0, 2, 4, 6, 8, 10, 12, 14],
                         [2, 4, 6, 8, 10, 12, 14, 16],
                         [100, 100, 50, 50, 0, 0, 255, 255],
                         [100, 104, 50, 54, 0, 4, 255, 251]], dtype=np.uint8)
    frame = np.stack([channel0, 255 - channel0, np.full_like(channel0, 7)], axis=-1)
    expected0 = np.array([[2, 6, 10, 14],
                          [101, 51, 1, 254]], dtype=np.uint8)
    expected = np.stack([expected0, 255 - expected0, np.full_like(expected0, 7)], axis=-1)
    resized = resize_2k(frame)
    assert resized.dtype == np.uint8
    np.testing.assert_array_equal(resized, expected)


def test_resize_2k_of_a_netflix_frame_is_2048x1080():
    assert resize_2k(np.zeros((2160, 4096, 3), np.uint8)).shape == (1080, 2048, 3)


def test_crop_4k_keeps_the_centre_half():
    frame = (10 * np.arange(4)[:, None] + np.arange(8)[None, :])[..., None]   # value = 10·row + column
    np.testing.assert_array_equal(crop_4k(frame)[..., 0], [[12, 13, 14, 15], [22, 23, 24, 25]])


def test_crop_4k_of_a_netflix_frame_is_rows_540_to_1619_columns_1024_to_3071():
    frame = np.arange(2160 * 4096, dtype=np.int32).reshape(2160, 4096, 1)       # value = 4096·row + column
    crop = crop_4k(frame)
    assert crop.shape == (1080, 2048, 1)
    assert crop[0, 0, 0] == 540 * 4096 + 1024 and crop[-1, -1, 0] == 1619 * 4096 + 3071


def test_triplets_are_the_even_frames_2_to_98_of_each_clip(tmp_path):
    for clip in CLIPS:
        (tmp_path / clip).mkdir()
    triplets = clip_triplets(tmp_path)
    assert len(triplets) == 8 * 49
    first, last = triplets[0], triplets[-1]
    assert first.name == "BoxingPractice/002" and last.name == "Tango/098"
    assert [p.name for p in (first.frame0, first.gt, first.frame1)] == ["001.png", "002.png", "003.png"]
    assert [p.name for p in (last.frame0, last.gt, last.frame1)] == ["097.png", "098.png", "099.png"]


def test_missing_clip_folder_fails_with_one_line(tmp_path, capsys):
    for clip in CLIPS[:-1]:
        (tmp_path / clip).mkdir()
    assert main(["--root", str(tmp_path), "--ckpt", str(tmp_path / "x.pt")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "Tango") in lines[0]


def test_run_on_synthetic_clips(tmp_path, lite_ckpt):
    """Frames 001-003 of the first clip (128x256 cuts of a real frame): both resolutions score
    the first triplet as the model does on the resized / cropped frames."""
    for clip in CLIPS:
        (tmp_path / clip).mkdir()
    source = cv2.imread(str(FIXTURES / "vimeo_triplet/sequences/00001/0002/im1.png"))
    frames = [source[40 + 4 * k:168 + 4 * k, 60 + 8 * k:316 + 8 * k] for k in range(3)]   # BGR 128x256
    for number, frame in enumerate(frames, start=1):
        cv2.imwrite(str(tmp_path / "BoxingPractice" / f"{number:03d}.png"), frame)
    out = tmp_path / "xiph.json"
    assert main(["--root", str(tmp_path), "--ckpt", str(lite_ckpt), "--device", "cpu", "--limit", "1",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["dataset"] == "xiph" and list(report["splits"]) == ["2k", "4k"]
    assert report["protocol"]["pad_divisor"] == 32 and report["protocol"]["global_motion"] is True

    model = load_network(lite_ckpt, global_motion=True)
    prepare = {"2k": lambda f: cv2.resize(f, (128, 64), interpolation=cv2.INTER_AREA),
               "4k": lambda f: f[32:96, 64:192]}
    for split, cut in prepare.items():
        frame0, gt, frame1 = (torch.from_numpy(np.ascontiguousarray(cut(f)[..., ::-1]))
                              .permute(2, 0, 1)[None] / 255.0 for f in frames)
        with torch.inference_mode():
            prediction = model(frame0, frame1)["I_t"]          # 64x128 needs no padding to 32
        scores = report["splits"][split]
        assert scores["n"] == 1 and scores["per_sample"][0]["name"] == "BoxingPractice/002"
        assert scores["psnr"] == pytest.approx(psnr(prediction, gt), abs=1e-5)
        assert scores["ssim"] == pytest.approx(ssim_matlab(gt, prediction), abs=1e-6)
