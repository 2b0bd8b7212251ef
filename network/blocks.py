"""Convolution units used throughout the network (state-dict layout `<name>.0` conv, `<name>.1` PReLU)."""
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

INPLACE_MIN_ELEMENTS = 1 << 24  # tensors at least this large are activated in place
BAND_PIXELS = 1 << 17     # input pixels per band of `map_row_bands`


class PReLU(nn.PReLU):
    """Per-channel PReLU that, on large tensors when no gradient is needed, overwrites its input
    one contiguous slab at a time instead of allocating a second full-size tensor. Use it only
    on tensors that nothing else reads (fresh convolution outputs)."""

    def forward(self, x: Tensor) -> Tensor:
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if needs_grad or x.numel() < INPLACE_MIN_ELEMENTS:
            return F.prelu(x, self.weight)
        # Slabs that are contiguous in memory: rows when channels-last, channels otherwise.
        channels_last = x.is_contiguous(memory_format=torch.channels_last)
        dim = 2 if channels_last else 1
        step = max(1, x.shape[dim] // 8)
        for start in range(0, x.shape[dim], step):
            slab = x.narrow(dim, start, min(step, x.shape[dim] - start))
            weight = self.weight if channels_last else self.weight[start:start + slab.shape[1]]
            slab.copy_(F.prelu(slab, weight))
        return x


def conv_prelu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (zero padding 1) followed by a per-channel PReLU."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1), PReLU(out_ch))


class Deconv2x2(nn.ConvTranspose2d):
    """2x2 stride-2 transposed convolution (exactly doubles H and W), computed as what it is:
    one [C_in -> 4 C_out] matrix product per input pixel, then a 2x2 pixel shuffle.

    Same parameters and result as `nn.ConvTranspose2d(in_ch, out_ch, 2, 2)`, but it runs as a
    GEMM, which CPUs execute far faster than a transposed convolution in bf16.
    x: [B, C_in, H, W] -> [B, C_out, 2H, 2W], channels-last memory.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(in_ch, out_ch, 2, 2)

    def forward(self, x: Tensor) -> Tensor:
        in_ch, out_ch = self.weight.shape[:2]
        weight = self.weight.permute(2, 3, 1, 0).reshape(4 * out_ch, in_ch)   # rows (i, j, o)
        bias = None if self.bias is None else self.bias.repeat(4)
        y = F.linear(x.permute(0, 2, 3, 1), weight, bias)                    # [B, H, W, 4 C_out]
        y = rearrange(y, "b h w (i j o) -> b (h i) (w j) o", i=2, j=2)
        return y.permute(0, 3, 1, 2)


def deconv_prelu(in_ch: int, out_ch: int) -> nn.Sequential:
    """2x2 stride-2 transposed convolution followed by a PReLU."""
    return nn.Sequential(Deconv2x2(in_ch, out_ch), PReLU(out_ch))


def map_row_bands(fn: Callable[..., Tensor], inputs: list[Tensor], scale: int = 1,
                  halo: int = 1) -> Tensor:
    """`fn(*inputs)`, computed on horizontal bands of rows and stitched together.

    The result equals the unbanded one whenever each output row depends only on the input
    rows within `halo` rows of it (3x3 convolutions: one row each), while `fn`'s intermediate
    tensors exist for one band at a time. inputs: [B, C_i, H, W] each; fn's output:
    [B, C, scale * H, scale * W].
    """
    height, width = inputs[0].shape[-2:]
    rows = max(1, BAND_PIXELS // width)
    if rows >= height:
        return fn(*inputs)
    out = None
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        first, last = max(0, top - halo), min(height, bottom + halo)
        band = fn(*(x[:, :, first:last] for x in inputs))
        band = band[:, :, (top - first) * scale:(bottom - first) * scale]
        if out is None:
            layout = (torch.channels_last if band.is_contiguous(memory_format=torch.channels_last)
                      else torch.contiguous_format)
            out = torch.empty((band.shape[0], band.shape[1], scale * height, scale * width),
                              dtype=band.dtype, device=band.device, memory_format=layout)
        out[:, :, top * scale:bottom * scale] = band
    return out
