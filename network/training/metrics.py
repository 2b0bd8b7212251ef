"""What validation measures and shows: PSNR per sample, flow end-point error, and the
TensorBoard pictures."""
import torch
from torch import Tensor
from torchvision.utils import flow_to_image, make_grid


def batch_psnr(pred: Tensor, target: Tensor) -> Tensor:
    """[B, 3, H, W] each, in [0, 1] -> [B] PSNR in dB, float32."""
    mse = (pred.float() - target.float()).square().mean(dim=(1, 2, 3))
    return -10 * torch.log10(mse.clamp_min(1e-10))


def end_point_error(flow: Tensor, true: Tensor, valid: Tensor) -> Tensor:
    """Mean Euclidean distance between `flow` and `true` ([B, 2, H, W], pixels) over the pixels
    where `valid` [B, 1, H, W] is 1 -> [B] pixels (0 for a sample with no valid pixel)."""
    distance = (flow.float() - true.float()).norm(dim=1)                 # [B, H, W]
    weight = valid[:, 0].float()
    return (distance * weight).sum(dim=(1, 2)) / weight.sum(dim=(1, 2)).clamp_min(1)


def validation_images(im0: Tensor, im1: Tensor, pred: Tensor, gt: Tensor, flows: list[Tensor],
                      mask: Tensor, true_flow: Tensor | None = None,
                      max_samples: int = 4) -> dict[str, Tensor]:
    """TensorBoard pictures of the first `max_samples` samples, one row each ([3, H', W'] in
    [0, 1]):

    images: frame 0 | prediction | ground truth | frame 1;
    flows: flow t->0 | flow t->1 | blend weight of frame 0 (occ_mask1, white: frame 0 only)
        [| true flow t->0 | true flow t->1], flows colour-coded on one common scale.

    im0, im1, pred, gt: [B, 3, H, W] in [0, 1]; flows: two [B, 2, H, W] (t->0, t->1), pixels;
    mask: [B, 1, H, W] in [0, 1]; true_flow: [B, 4, H, W] or None.
    """
    n = min(max_samples, im0.shape[0])
    frames = torch.stack([t[:n].float().cpu() for t in (im0, pred, gt, im1)], dim=1)
    vectors = [f[:n].float().cpu() for f in flows]
    if true_flow is not None:
        vectors += list(true_flow[:n].float().cpu().split(2, dim=1))
    coloured = flow_to_image(torch.cat(vectors)).float().div(255).split(n)   # one scale
    tiles = [*coloured[:2], mask[:n].float().cpu().expand(-1, 3, -1, -1), *coloured[2:]]
    motion = torch.stack(tiles, dim=1)                                     # [n, k, 3, H, W]
    return {name: make_grid(grid.flatten(0, 1).clamp(0, 1), nrow=grid.shape[1], padding=2)
            for name, grid in (("images", frames), ("flows", motion))}
