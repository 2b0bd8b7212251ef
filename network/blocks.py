"""Convolution units used throughout the network (state-dict layout `<name>.0` conv, `<name>.1` PReLU)."""
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

INPLACE_MIN_ELEMENTS = 1 << 24  # tensors at least this large are activated in place
BAND_PIXELS = 1 << 15     # input pixels per band of `map_row_bands` ...
BAND_HALOS = 32           # ... unless that is fewer rows than this many halos


class _PReLUFunction(torch.autograd.Function):
    """F.prelu with a backward made of kernels that PyTorch vectorises.

    PyTorch's own PReLU backward runs 10-30 times slower than these on CPUs (11 ms for 2 M
    bf16 elements): it was a tenth of a lite bf16 training step. The gradients are the same:
    grad where x > 0, weight * grad elsewhere (x = 0 included); for the weight, the sum of
    x * grad where x <= 0.
    x: [N, C, ...]; weight: [C].
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:
        out = F.prelu(x, weight)                 # under autocast, in its dtype
        ctx.save_for_backward(x.to(out.dtype), weight)
        ctx.input_dtype = x.dtype
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        x, weight = ctx.saved_tensors
        positive = torch.ops.aten.threshold_backward(grad, x, 0)   # grad where x > 0, else 0
        negative = grad - positive                                 # grad where x <= 0, else 0
        per_channel = weight.to(grad.dtype).view([1, -1] + [1] * (x.dim() - 2))
        grad_x = torch.addcmul(positive, negative, per_channel)
        others = [d for d in range(x.dim()) if d != 1]
        grad_weight = (negative * x).sum(dim=others)   # accumulated in float32 on CPUs
        return grad_x.to(ctx.input_dtype), grad_weight.to(weight.dtype)


def needs_grad(x: Tensor, weight: Tensor) -> bool:
    """Whether a layer applying `weight` to `x` must record its computation for autograd."""
    return torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """F.prelu(x, weight), with a faster backward on CPUs (`_PReLUFunction`). Elsewhere PyTorch's
    own: one element-wise pass and a reduction, where ours makes four passes and a reduction
    (not timed on a GPU here). x: [N, C, ...]; weight: [C]."""
    if x.device.type == "cpu" and needs_grad(x, weight):
        return _PReLUFunction.apply(x, weight)
    return F.prelu(x, weight)


def prelu_rows(x: Tensor, weight: Tensor) -> Tensor:
    """F.prelu(x, weight) for a channels-last x: [B, C, H, W], weight: [C].

    Computed on the rows [B * H, W * C] with the weight tiled W times. The result is the same,
    element for element, but the per-channel loop becomes one long vectorised row: PyTorch's
    channels-last PReLU runs its inner loop over the C channels of a pixel, which falls back to
    scalar code when C is not a multiple of the vector width (bf16: 3 to 14 times slower for
    C = 24, 48, 101).
    """
    batch, channels, height, width = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(batch * height, width * channels)   # a view
    out = prelu(rows, weight.repeat(width))
    return out.view(batch, height, width, channels).permute(0, 3, 1, 2)


def is_channels_last(x: Tensor) -> bool:
    """True for a 4-d tensor laid out channels-last (and not also plain contiguous)."""
    return (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
            and not x.is_contiguous())


class _SplitChannels(torch.autograd.Function):
    """z.split(sizes, dim=1), with a backward that writes z's gradient once, in z's layout.

    Autograd's own backward of a channel slice is a zero tensor of z's full size in the plain
    layout with the slice's gradient copied in, one per slice, each then added to the gradient
    of z's other uses. Those are channels-last here, and adding tensors of different layouts
    runs far below memory speed: 10 ms of a 0.34 s lite bf16 step (batch 8, crop 64, one CPU
    thread), where this makes one write and adds like to like.
    """

    @staticmethod
    def forward(ctx, z: Tensor, sizes: tuple[int, ...]) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        ctx.sizes, ctx.shape = sizes, z.shape
        ctx.memory_format = torch.channels_last if is_channels_last(z) else torch.contiguous_format
        return z.split(sizes, dim=1)

    @staticmethod
    def backward(ctx, *grads: Tensor | None) -> tuple[Tensor | None, None]:
        given = [g for g in grads if g is not None]
        if not given:
            return None, None
        grad = torch.empty(ctx.shape, dtype=given[0].dtype, device=given[0].device,
                           memory_format=ctx.memory_format)
        for part, g in zip(grad.split(ctx.sizes, dim=1), grads):
            if g is None:
                part.zero_()
            else:
                part.copy_(g)
        return grad, None


def split_channels(z: Tensor, sizes: tuple[int, ...]) -> tuple[Tensor, ...]:
    """z.split(sizes, dim=1) (views of z); when gradients are recorded, with a backward that
    keeps z's memory layout (`_SplitChannels`). z: [B, C, H, W], sum(sizes) = C."""
    if torch.is_grad_enabled() and z.requires_grad:
        return _SplitChannels.apply(z, tuple(sizes))
    return z.split(tuple(sizes), dim=1)


class PReLU(nn.PReLU):
    """Per-channel PReLU, fast in either memory layout.

    With `inplace` (for fresh convolution outputs that nothing else reads), large tensors are
    overwritten one contiguous slab at a time when no gradient is needed, instead of
    allocating a second full-size tensor.
    """

    def __init__(self, num_parameters: int, inplace: bool = True):
        super().__init__(num_parameters)
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        channels_last = is_channels_last(x)
        activate = prelu_rows if channels_last else prelu
        if needs_grad(x, self.weight) or not self.inplace or x.numel() < INPLACE_MIN_ELEMENTS:
            return activate(x, self.weight)
        # Slabs that are contiguous in memory: rows when channels-last, channels otherwise.
        dim = 2 if channels_last else 1
        step = max(1, x.shape[dim] // 8)
        for start in range(0, x.shape[dim], step):
            slab = x.narrow(dim, start, min(step, x.shape[dim] - start))
            weight = self.weight if channels_last else self.weight[start:start + slab.shape[1]]
            slab.copy_(activate(slab, weight))
        return x


def conv_prelu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (zero padding 1) followed by a per-channel PReLU."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1), PReLU(out_ch))


class Deconv2x2(nn.ConvTranspose2d):
    """2x2 stride-2 transposed convolution (exactly doubles H and W), computed as what it is:
    one [C_in -> 4 C_out] matrix product per input pixel, then a 2x2 pixel shuffle.

    Same parameters and result as `nn.ConvTranspose2d(in_ch, out_ch, 2, 2)`, but it runs as a
    GEMM, which CPUs execute far faster than a transposed convolution in bf16. Without
    gradients, in half precision, output rows 2h and 2h + 1 are two products copied into
    their places, so no shuffled copy of the (large) output is made; in float32 the native
    transposed convolution is the faster one.
    x: [B, C_in, H, W] -> [B, C_out, 2H, 2W], channels-last memory.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(in_ch, out_ch, 2, 2)

    def forward(self, x: Tensor) -> Tensor:
        in_ch, out_ch = self.weight.shape[:2]
        training = needs_grad(x, self.weight)
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        if not training and dtype == torch.float32:   # native kernel: 1.6-3.7x faster on CPUs
            return F.conv_transpose2d(x.contiguous(memory_format=torch.channels_last),
                                      self.weight, self.bias, stride=2)
        weight = self.weight.permute(2, 3, 1, 0).reshape(4 * out_ch, in_ch)   # rows (i, j, o)
        if training:
            bias = None if self.bias is None else self.bias.repeat(4)
            y = F.linear(x.permute(0, 2, 3, 1), weight, bias)                 # [B, H, W, 4 C_out]
            y = rearrange(y, "b h w (i j o) -> b (h i) (w j) o", i=2, j=2)
            return y.permute(0, 3, 1, 2)
        batch, _, height, width = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(batch * height * width, in_ch).to(dtype)
        weight = weight.to(dtype).view(2, 2 * out_ch, in_ch)                  # [i, (j o), C_in]
        bias = None if self.bias is None else self.bias.repeat(2).to(dtype)   # of (j, o)
        out = x.new_empty((batch * height, 2, width, 2 * out_ch), dtype=dtype)  # (b h) i w (j o)
        for i in range(2):
            product = rows @ weight[i].t() if bias is None else torch.addmm(bias, rows, weight[i].t())
            out[:, i] = product.view(batch * height, width, 2 * out_ch)
        return out.view(batch, 2 * height, 2 * width, out_ch).permute(0, 3, 1, 2)


def deconv_prelu(in_ch: int, out_ch: int) -> nn.Sequential:
    """2x2 stride-2 transposed convolution followed by a PReLU."""
    return nn.Sequential(Deconv2x2(in_ch, out_ch), PReLU(out_ch))


def map_row_bands(fn: Callable[..., Tensor | tuple[Tensor, ...]], inputs: list[Tensor],
                  scale: float = 1, halo: int = 1, with_rows: bool = False
                  ) -> Tensor | tuple[Tensor, ...]:
    """`fn(*inputs)`, computed on horizontal bands of rows and stitched together.

    The result equals the unbanded one whenever each output row depends only on the input
    rows within `halo` rows of it (3x3 convolutions: one row each), while `fn`'s intermediate
    tensors exist for one band at a time. inputs: [B, C_i, H, W] each; fn's output (a tensor
    or a tuple of them): [B, C, scale * H, scale * W]. With scale 1/2 (stride-2 layers), bands
    and `halo` are in even rows, so that every band keeps the stride's phase. With `with_rows`,
    fn is called as fn(rows, *bands), `rows` being the band's slice of the input rows (for
    tensors of other sizes that fn reads itself).
    """
    height, width = inputs[0].shape[-2:]
    step = round(1 / scale) if scale < 1 else 1        # input rows per output row
    # Bands of BAND_PIXELS, but at least BAND_HALOS halos tall, so that the rows recomputed
    # at their edges stay a small part of the work on wide frames.
    rows = max(step, BAND_PIXELS // width // step * step, -(-BAND_HALOS * halo // step) * step)
    if rows >= height:
        return fn(slice(0, height), *inputs) if with_rows else fn(*inputs)
    outs = None
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        first, last = max(0, top - halo), min(height, bottom + halo)
        bands = [x[:, :, first:last] for x in inputs]
        result = fn(slice(first, last), *bands) if with_rows else fn(*bands)
        parts = result if isinstance(result, tuple) else (result,)
        keep = slice(int((top - first) * scale), int((bottom - first) * scale))
        if outs is None:
            outs = [torch.empty((part.shape[0], part.shape[1], int(scale * height),
                                 int(scale * width)), dtype=part.dtype, device=part.device,
                                memory_format=torch.channels_last if is_channels_last(part)
                                else torch.contiguous_format) for part in parts]
        for out, part in zip(outs, parts):
            out[:, :, int(top * scale):int(bottom * scale)] = part[:, :, keep]
    return tuple(outs) if isinstance(result, tuple) else outs[0]
