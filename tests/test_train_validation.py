"""What validation reports and draws, and how training shares the CPU cores."""
import cv2
import numpy as np
import pytest
import torch

import train
from dataset import write_known_motion
from network import load_network
from network.training import cores as core_sharing
from network.training import end_point_error, share_cores, usable_cores
from training_data import smoke_args
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_end_point_error_averages_distances_over_valid_pixels():
    flow = torch.zeros(2, 2, 2, 2)
    true = torch.zeros(2, 2, 2, 2)
    true[0, 0, 0, 0] = 3.0
    true[0, 1, 0, 0] = 4.0            # 5 px off at (0, 0)
    true[0, 0, 1, 1] = 1.0            # 1 px off at (1, 1), not valid below
    valid = torch.ones(2, 1, 2, 2)
    valid[0, 0, 1, 1] = 0
    valid[1] = 0                      # a sample without valid pixels scores 0
    torch.testing.assert_close(end_point_error(flow, true, valid), torch.tensor([5 / 3, 0.0]))


def test_cores_are_never_oversubscribed():
    cores = usable_cores()
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for device in (cpu, cuda):
        for requested in (None, 0, 1, 3):
            for processes in (1, 2):
                workers, threads = share_cores(device, requested, processes)
                share = max(1, cores // processes)
                assert threads >= 1 and (workers + threads <= share or threads == 1)
                assert requested is None or workers == requested
    assert share_cores(cpu, None) == (cores // 4, cores - cores // 4)


@pytest.mark.parametrize("cores, device, requested, processes, expected", [
    (16, "cpu", None, 1, (4, 12)),    # a quarter of the cores decode
    (16, "cuda", None, 1, (8, 8)),    # up to 8 workers feed a GPU
    (16, "cuda", None, 2, (7, 1)),    # 8 cores per process: 7 workers and the main thread
    (10, "mps", None, 1, (8, 2)),     # as a GPU: an M-series Mac decodes with most cores
    (16, "cpu", 3, 1, (3, 13)),
    (16, "cpu", None, 4, (1, 3)),
    (2, "cpu", None, 1, (0, 2)),      # decoding in the training process
    (2, "cuda", None, 1, (1, 1)),
    (2, "cpu", 3, 1, (3, 1)),         # more workers than cores when asked: one thread left
])
def test_core_shares_worked_out_by_hand(monkeypatch, cores, device, requested, processes,
                                       expected):
    monkeypatch.setattr(core_sharing, "usable_cores", lambda: cores)
    assert share_cores(torch.device(device), requested, processes) == expected


@pytest.fixture(scope="module")
def known_motion(tmp_path_factory):
    return write_known_motion(tmp_path_factory.mktemp("known_motion") / "set", train=4, test=2,
                              size=(64, 64), seed=3)


def test_validation_logs_the_averaging_baseline_flow_errors_and_pictures(known_motion, tmp_path):
    assert train.main(["--phase", "1", "--synthetic_path", str(known_motion), "--epochs", "1",
                       "--max_steps", "1", *smoke_args(tmp_path), "--val_samples", "0"]) == 0
    events = EventAccumulator(str(tmp_path / "runs"))
    events.Reload()
    scalars = {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}
    # The baseline, computed here from the written files.
    expected = []
    for name in (known_motion / "tri_testlist.txt").read_text().split():
        folder = known_motion / "sequences" / name
        im0, gt, im1 = (cv2.imread(str(folder / f"im{k}.png")).astype(np.float64) / 255
                        for k in (1, 2, 3))
        expected.append(-10 * np.log10(np.mean(((im0 + im1) / 2 - gt) ** 2)))
    assert scalars["val/psnr_average"] == pytest.approx(np.mean(expected), abs=1e-3)
    assert {"val/psnr", "val/epe_t0", "val/epe_t1"} <= set(scalars)
    # The network's scores, worked out here with the saved weights: PSNR of the prediction,
    # the flows' mean distance to the true ones over the pixels of valid.png (per triplet).
    (checkpoint,) = (tmp_path / "checkpoints").glob("*.pt")
    model = load_network(checkpoint, global_motion=False)
    psnrs, errors = [], {"epe_t0": [], "epe_t1": []}
    for name in (known_motion / "tri_testlist.txt").read_text().split():
        folder = known_motion / "sequences" / name
        im0, gt, im1 = (cv2.imread(str(folder / f"im{k}.png"))[:, :, ::-1].astype(np.float64)
                        / 255 for k in (1, 2, 3))
        with torch.no_grad():
            out = model(*(torch.from_numpy(im.transpose(2, 0, 1).copy()).float()[None]
                          for im in (im0, im1)))
        psnrs.append(-10 * np.log10(np.mean((out["I_t"][0].numpy().transpose(1, 2, 0) - gt) ** 2)))
        valid = cv2.imread(str(folder / "valid.png"), cv2.IMREAD_GRAYSCALE) > 127
        for key, tag in (("opt_flow_0", "epe_t0"), ("opt_flow_1", "epe_t1")):
            true = np.load(folder / f"flow_{tag[-2:]}.npy")
            distance = np.linalg.norm(out[key][0].numpy() - true, axis=0)
            errors[tag].append(distance[valid].mean())
    assert scalars["val/psnr"] == pytest.approx(np.mean(psnrs), abs=1e-3)
    for tag, values in errors.items():
        assert scalars[f"val/{tag}"] == pytest.approx(np.mean(values), abs=1e-3)
        assert np.mean(values) > 0.5                  # an untrained network's flows are off
    images = {tag: events.Images(tag)[-1] for tag in events.Tags()["images"]}
    # Two samples of 64 x 64 in rows, tiles separated by 2 pixels: 4 frames; 5 flow tiles
    # (two predicted flows, the occlusion mask, two true flows).
    assert (images["val/images"].height, images["val/images"].width) == (134, 4 * 66 + 2)
    assert (images["val/flows"].height, images["val/flows"].width) == (134, 5 * 66 + 2)
