"""A tiny network trained for a few seconds on known translations learns: its loss falls and its
flows move to the true ones (the proof on held-out photographs is the lite run in README.md)."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dataset import KnownMotionTriplet, write_known_motion
from network import LITE, Network
from network.scratch_init import init_for_motion
from network.training import TrainConfig
from trainer import DataSource, Trainer
from training_data import TINY, read_scalars

STEPS = 120
COSINE_AT_START = 0.5   # measured 0.75: mean direction of untrained flows vs the shifts


def config(folder: Path) -> TrainConfig:
    return TrainConfig(phase=1, model_type="lite", global_motion=False, freeze="global",
                       init_ckpt=None, load_optimizer=False, epochs=STEPS // 2, batch_size=4,
                       init_lr=1e-3, last_lr=1e-3, warmup=1, weight_decay=1e-4, lap_weight=1.0,
                       lap_levels=5, warp_weight=0.25, amp="fp32", scratch_init="motion",
                       max_steps=STEPS, val_every=0, val_samples=0, log_every=1, num_workers=0,
                       seed=1, device="cpu", model_checkpoints=folder / "checkpoints",
                       log_dir=folder / "runs", resume=False, keep_checkpoints=1)


@pytest.fixture(scope="module")
def translations(tmp_path_factory) -> Path:
    """Eight photographs shifted by up to +-3 px per frame, with their true flows."""
    return write_known_motion(tmp_path_factory.mktemp("translations") / "set", train=1, test=8,
                              size=(64, 64), kinds=("translation",), max_shift=3.0, seed=11)


def test_tiny_network_learns_the_known_translations(translations, tmp_path):
    triplets = KnownMotionTriplet(translations, "test")        # whole frames, with true flows
    trainer = Trainer(config(tmp_path), DataSource(triplets, 4, "vimeo"),
                      DataSource(triplets, 8, "vimeo"), network=TINY)
    trainer.fit()
    losses = list(read_scalars(tmp_path / "runs", "train/loss").values())
    assert len(losses) == STEPS
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])

    im0, gt, im1, flow, valid = (torch.stack(x) for x in zip(*(triplets[i] for i in range(8))))
    with torch.no_grad():
        out = trainer.raw_model.eval()(im0, im1)
    weight = valid / valid.sum(dim=(2, 3), keepdim=True)          # mean over valid pixels
    for key, true in (("opt_flow_0", flow[:, :2]), ("opt_flow_1", flow[:, 2:])):
        # Untrained, the flows are 0. Now each triplet's mean flow points within 45 degrees of
        # its true shift (within 25 on average), and the flows are far closer to the truth than
        # no motion.
        predicted, shift = (out[key] * weight).sum(dim=(2, 3)), (true * weight).sum(dim=(2, 3))
        cosine = F.cosine_similarity(predicted, shift, dim=1)
        assert (cosine > 0.7).all() and cosine.mean() > 0.9
        error = ((out[key] - true).norm(dim=1, keepdim=True) * weight).sum(dim=(1, 2, 3))
        assert (error < 0.6 * (true.norm(dim=1, keepdim=True) * weight).sum(dim=(1, 2, 3))).all()
    scores = {tag: read_scalars(tmp_path / "runs", f"val/{tag}")[STEPS]
              for tag in ("psnr", "psnr_average")}
    assert scores["psnr"] > scores["psnr_average"] + 3


def test_attention_init_starts_from_the_attention_motion(translations):
    """--scratch_init attention: before any training, the flows are the antisymmetric part of
    the two frames' attention motions (flow t->0 = -flow t->1), and on shifted photographs they
    already lean towards the true shift; --scratch_init motion starts them at 0."""
    triplets = KnownMotionTriplet(translations, "test")
    im0, gt, im1, flow, valid = (torch.stack(x) for x in zip(*(triplets[i] for i in range(8))))
    outputs = {}
    for attention in (False, True):
        torch.manual_seed(0)
        model = Network(LITE, global_motion=False)
        init_for_motion(model, attention=attention)
        with torch.no_grad():
            outputs[attention] = model.eval()(im0, im1)
    assert not outputs[False]["opt_flow_0"].any() and not outputs[False]["opt_flow_1"].any()
    out = outputs[True]
    torch.testing.assert_close(out["opt_flow_0"], -out["opt_flow_1"])
    weight = valid / valid.sum(dim=(2, 3), keepdim=True)
    predicted = (out["opt_flow_1"] * weight).sum(dim=(2, 3))
    shift = (flow[:, 2:] * weight).sum(dim=(2, 3))
    assert F.cosine_similarity(predicted, shift, dim=1).mean() > COSINE_AT_START
