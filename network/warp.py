"""Resampling primitives shared by every stage: backward warping and flow/image rescaling.

All resampling uses `align_corners=True`: pixel centres sit at integer coordinates and the
corner pixels of two grids coincide.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def warp_backward(image: Tensor, flow: Tensor, top: int = 0) -> Tensor:
    """Sample `image` at p + flow(p) bilinearly; taps outside the image read 0.

    image: [B, C, H, W]; flow: [B, 2, h, W], pixels of the image's grid, x (right) then y
    (down), for its rows top .. top + h - 1 (all of them by default). Returns [B, C, h, W] in
    the dtype of `image`. Coordinates are formed in at least float32 so that low-precision
    autocast does not move samples by whole pixels.
    """
    height, width = image.shape[-2:]
    dtype = torch.promote_types(torch.promote_types(flow.dtype, image.dtype), torch.float32)
    flow = flow.to(dtype)
    xs = torch.arange(width, device=flow.device, dtype=dtype)
    ys = torch.arange(top, top + flow.shape[-2], device=flow.device, dtype=dtype).unsqueeze(1)
    grid_x = 2.0 * (xs + flow[:, 0]) / (width - 1) - 1.0    # [B, h, W]
    grid_y = 2.0 * (ys + flow[:, 1]) / (height - 1) - 1.0
    grid = torch.stack((grid_x, grid_y), dim=-1)             # [B, h, W, 2]
    out = F.grid_sample(image.to(dtype), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=True)
    return out.to(image.dtype)


def upsample_flow(flow: Tensor, factor: int) -> Tensor:
    """Resize a flow field by an integer factor and rescale its values to the new grid.

    flow: [B, 2, H, W], pixels -> [B, 2, factor*H, factor*W], pixels of the finer grid.
    """
    return factor * F.interpolate(flow, scale_factor=factor, mode="bilinear", align_corners=True)


def downsample_half(image: Tensor) -> Tensor:
    """Halve an image by bilinear point sampling (no anti-aliasing).

    image: [B, C, H, W] -> [B, C, H//2, W//2].
    """
    return F.interpolate(image, scale_factor=0.5, mode="bilinear", align_corners=True)
