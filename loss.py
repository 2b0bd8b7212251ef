"""Training losses of ATM-VFI, as the authors' trainers compute them.

- `laplacian_loss`: L1 between the band-pass levels of two Laplacian pyramids.
- `warping_loss`: that loss on every intermediate synthesis of the network (`im_t_list`).
- `PerceptualStyleLoss`: VGG19 feature L1 (perceptual) and Gram-matrix (style) distances.

All take images [B, 3, H, W] RGB in [0, 1] and compute in float32 on the input's device.
Nothing is stored between calls but the blur kernel per device and dtype: the number of
pyramid levels is an argument of each call.
"""
import functools
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from network import CheckpointError, UserError, read_checkpoint

BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Slices of torchvision's vgg19().features ending at relu1_2, relu2_2, relu3_4, relu4_4, relu5_4.
VGG_BLOCKS = ((0, 4), (4, 9), (9, 18), (18, 27), (27, 36))
# The authors' 4th block starts two layers early and applies conv3_4 + ReLU a second time.
VGG_BLOCKS_OFFICIAL = ((0, 4), (4, 9), (9, 18), (16, 27), (27, 36))


@functools.lru_cache(maxsize=8)
def binomial_kernel(device: torch.device, dtype: torch.dtype) -> Tensor:
    """The 5x5 binomial blur [5, 5] (outer product of 1 4 6 4 1, over 256: sums to 1), made once
    per device and dtype: on a GPU, a tensor built from Python numbers is a host-to-device copy
    that waits for the queued work, at every pyramid otherwise."""
    taps = torch.tensor(BINOMIAL, dtype=dtype)
    return (torch.outer(taps, taps) / 256).to(device)


def _blur(image: Tensor, kernel: Tensor) -> Tensor:
    """5x5 depthwise filter, border reflected (repeated for maps of 2 pixels or fewer, where
    reflection is undefined). image: [B, C, H, W] -> same shape."""
    mode = "reflect" if min(image.shape[-2:]) > 2 else "replicate"
    padded = F.pad(image, (2, 2, 2, 2), mode=mode)
    return F.conv2d(padded, kernel.expand(image.shape[1], 1, 5, 5), groups=image.shape[1])


def laplacian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """Band-pass levels of `image` [B, C, H, W], finest first: level l has size H/2^l.

    Each level is c_l - up(down(blur(c_l))) with c_0 = image and c_{l+1} = down(blur(c_l));
    down keeps every second pixel from index 0, up puts the pixels back at even positions of a
    zero map and blurs with 4x the kernel. The low-pass remainder is not returned.
    """
    kernel = binomial_kernel(image.device, image.dtype)
    bands, current = [], image
    for _ in range(levels):
        low = _blur(current, kernel)[..., ::2, ::2]
        spread = torch.zeros_like(current)
        spread[..., ::2, ::2] = low
        bands.append(current - _blur(spread, 4 * kernel))
        current = low
    return bands


def laplacian_loss(pred: Tensor, target: Tensor, levels: int = 5) -> Tensor:
    """Sum over `levels` pyramid levels of the mean absolute difference of the band-pass images
    of `pred` and `target` [B, 3, H, W] (every level weighs the same whatever its size).

    The pyramid is linear, so it is built once, from the difference.
    """
    difference = pred.float() - target.float()
    return sum(band.abs().mean() for band in laplacian_pyramid(difference, levels))


def warping_loss(im_t_list: list[Tensor], target: Tensor, level_budget: int = 6,
                 max_levels: int = 5) -> Tensor:
    """Laplacian loss of every intermediate synthesis against the matching-size target.

    im_t_list: finest first, entry s [B, 3, H/2^s, W/2^s] (the network's `im_t_list`);
    target: [B, 3, H, W]. The target of scale s is the previous one resized by 1/2 (bilinear,
    align_corners=True, as the network's own image pyramid); scale s uses
    min(level_budget - s, max_levels) pyramid levels (5, 5, 4, 3, 2 by default). Plain sum.
    """
    total = target.new_zeros((), dtype=torch.float32)
    for scale, pred in enumerate(im_t_list):
        if scale:
            target = F.interpolate(target, size=pred.shape[-2:], mode="bilinear",
                                   align_corners=True)
        if pred.shape != target.shape:
            raise ValueError(f"im_t_list[{scale}] {tuple(pred.shape)} does not match the "
                             f"target {tuple(target.shape)}")
        total = total + laplacian_loss(pred, target, min(level_budget - scale, max_levels))
    return total


def vgg19_cache_file() -> Path:
    """Where torchvision keeps the ImageNet VGG19 weights once downloaded."""
    from torchvision.models import VGG19_Weights
    name = Path(urlparse(VGG19_Weights.IMAGENET1K_V1.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_vgg19_features(weights: Path | None = None) -> nn.Sequential:
    """torchvision's `vgg19().features` with ImageNet weights, frozen, in eval mode.

    weights: a state_dict file of torchvision's vgg19 (whole network or only its `features.`
    entries); None reads torchvision's cache. Never downloads and never falls back to random
    weights: a missing or unsuitable file raises UserError.
    """
    from torchvision.models import vgg19
    if weights is None:
        weights = vgg19_cache_file()
        if not weights.is_file():
            raise UserError(f"VGG19 ImageNet weights not found in torchvision's cache ({weights}); "
                            "fetch them once with torchvision.models.vgg19(weights='DEFAULT') "
                            "or pass --vgg_weights PATH")
    elif not Path(weights).is_file():
        raise UserError(f"VGG19 weights file not found: {weights}")
    try:
        state = read_checkpoint(weights)
    except CheckpointError as error:
        raise UserError(f"VGG19 weights: {error}") from None
    state = state.get("state_dict", state)
    if not isinstance(state, dict):
        raise UserError(f"{weights} does not hold a VGG19 state_dict")
    with torch.device("meta"):                      # layers only; the weights come from the file
        features = vgg19().features
    entries = {k.removeprefix("features."): v for k, v in state.items()
               if k.startswith("features.")}
    result = features.load_state_dict(entries, strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        raise UserError(f"{weights} is not a torchvision VGG19 state_dict (missing "
                        f"{result.missing_keys[:2]}, unexpected {result.unexpected_keys[:2]})")
    return features.requires_grad_(False).eval()


def gram_matrix(features: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, C, C]: F F^T per sample with F = C x (H*W), not normalised."""
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2)


class PerceptualStyleLoss(nn.Module):
    """Perceptual and style distances on five VGG19 blocks.

    Inputs are normalised with the ImageNet mean/std (no resizing); the target is detached.
    perceptual = sum over blocks of mean |phi_b(pred) - phi_b(target)|;
    style = sum over blocks of mean (G_b(pred) - G_b(target))^2, G the Gram matrix.
    `official_blocks` reproduces the authors' overlapping 4th block.
    """

    def __init__(self, features: nn.Sequential, official_blocks: bool = False):
        super().__init__()
        bounds = VGG_BLOCKS_OFFICIAL if official_blocks else VGG_BLOCKS
        self.blocks = nn.ModuleList(features[start:end] for start, end in bounds)
        self.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "PerceptualStyleLoss":
        return super().train(False)                                     # always frozen

    def _features(self, image: Tensor) -> list[Tensor]:
        x = (image.float() - self.mean) / self.std
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs

    def forward(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """pred, target: [B, 3, H, W] -> (perceptual, style), scalars."""
        with torch.no_grad():
            target_features = self._features(target.detach())
        perceptual = pred.new_zeros((), dtype=torch.float32)
        style = pred.new_zeros((), dtype=torch.float32)
        for p, t in zip(self._features(pred), target_features):
            perceptual = perceptual + (p - t).abs().mean()
            style = style + (gram_matrix(p) - gram_matrix(t)).square().mean()
        return perceptual, style
