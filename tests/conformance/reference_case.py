"""Write the ensemble conformance cases with the authors' own network: run from a checkout of
their repository (Gancheekim/ATM-VFI), whose `network` package it imports, with `flow_warp.py`
copied to the checkout root as their modules expect:

    cd ATM-VFI && cp network/flow_warp.py . && \\
        PYTHONPATH=. python /path/to/tests/conformance/reference_case.py CASE OUT.npz

CASE is a name of `CASES`. Weights: synth.py's stand-ins. Inputs: 128x192 crops of scikit-image
photographs at row and column 60 for frame 0 and (dy, dx) pixels away (negative: up, left) for
frame 1, chosen so that the ensemble's per-sample choice differs within the batch (lite: half
scale, then full; base: quarter scale, then full). Their attention blocks cache their
shifted-window masks keyed on the padded token count, so a coarser level of the ensemble would
reuse the full-scale masks (a stale cache, not part of the model); references use fresh masks,
so the cache is emptied before each block runs.
"""
import sys

import numpy as np
import torch
from skimage import data

import synth

OUTPUTS = ("I_t", "opt_flow_0", "opt_flow_1", "occ_mask1", "I_t_0", "I_t_1")
# name: (variant, ((photograph, (dy, dx)) per sample))
CASES = {"lite_ensemble_b2_128x192": ("lite", ((data.camera, (-48, -32)),
                                               (data.astronaut, (6, -10)))),
         "base_ensemble_b2_128x192": ("base", ((data.astronaut, (48, -32)),
                                               (data.astronaut, (6, -10))))}
TOP, LEFT, HEIGHT, WIDTH = 60, 60, 128, 192


def frames(samples) -> tuple[np.ndarray, np.ndarray]:
    """im0, im1: [2, 3, 128, 192] float32 RGB in [0, 1]."""
    first, second = [], []
    for load, (dy, dx) in samples:
        image = load()
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        image = (image[:, :, :3].astype(np.float64) / 255).astype(np.float32)
        first.append(image[TOP:TOP + HEIGHT, LEFT:LEFT + WIDTH].transpose(2, 0, 1))
        second.append(image[TOP + dy:TOP + dy + HEIGHT, LEFT + dx:LEFT + dx + WIDTH]
                      .transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(first)), np.ascontiguousarray(np.stack(second))


def authors_network(variant: str) -> torch.nn.Module:
    """Their network with synth.py's weights, global motion and the ensemble on, its mask
    cache emptied before every block runs."""
    if variant == "base":                                # theirs: the checkout's package
        from network.network_base import Network
    else:
        from network.network_lite import Network
    model = Network(global_motion=True, ensemble_global_motion=True)
    model.load_state_dict({key: torch.from_numpy(value)
                           for key, value in synth.synth_state_dict(variant).items()})

    def forget_masks(module, args):
        module._buffers.pop("attn_mask", None)
        module._buffers.pop("HW", None)

    for module in model.modules():
        module.register_forward_pre_hook(forget_masks)
    return model.eval()


def main() -> None:
    variant, samples = CASES[sys.argv[1]]
    im0, im1 = frames(samples)
    with torch.no_grad():
        out = authors_network(variant)(torch.from_numpy(im0), torch.from_numpy(im1))
    np.savez_compressed(sys.argv[2], im0=im0, im1=im1,
                        **{key: out[key].numpy() for key in OUTPUTS},
                        meta=np.array([variant, "True", "True"]))


if __name__ == "__main__":
    main()
