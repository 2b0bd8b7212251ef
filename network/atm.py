"""Window transformers: the ATMFormer (attention-to-motion) and the Swin-style feature enhancer.

Both run on the two frames stacked as one batch, frame-major: rows [0, B) are frame 0 and
rows [B, 2B) frame 1. Feature maps are channels-last, [2B, h, w, D]; tokens are row-major.
Windows are `ws x ws` cells; a map whose sides are not multiples of `ws` is zero-padded
symmetrically first (the odd cell at the bottom/right), and shifted blocks roll the padded
canvas by `ws / 2` cells, as in Swin.
"""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

MASKED = -100.0  # additive attention logit of a forbidden key (the released weights assume -100)
MLP_BAND_ELEMENTS = 1 << 24     # hidden activations per band of the transformer MLP
ATTENTION_CHUNK_ELEMENTS = 1 << 21  # attention logits materialised at once (float32: 8 MiB)
SOFTMAX_FLOOR = 50.0    # logits below the row maximum by more count as this much below


def window_partition(x: Tensor, ws: int) -> Tensor:
    """[n, Hp, Wp, D] -> [n * Hp/ws * Wp/ws, ws*ws, D], windows image-major, cells row-major."""
    return rearrange(x, "n (wh y) (ww x) d -> (n wh ww) (y x) d", y=ws, x=ws)


def window_reverse(windows: Tensor, ws: int, height: int, width: int) -> Tensor:
    """Inverse of `window_partition`: [n * nW, ws*ws, D] -> [n, height, width, D]."""
    return rearrange(windows, "(n wh ww) (y x) d -> n (wh y) (ww x) d",
                     wh=height // ws, ww=width // ws, y=ws, x=ws)


def _band_labels(size: int, cuts: tuple[int, int], device: torch.device) -> Tensor:
    """Label 0/1/2 of each index of range(size) by the band [0, c0), [c0, c1), [c1, size)."""
    index = torch.arange(size, device=device)
    return (index >= cuts[0]).long() + (index >= cuts[1]).long()


def _region_mask(rows: Tensor, cols: Tensor, ws: int) -> Tensor:
    """Additive mask [nW, N, N] forbidding attention between cells of different regions.

    rows: [Hp] band label per canvas row; cols: [Wp] band label per canvas column.
    """
    labels = (3 * rows[:, None] + cols[None, :]).unsqueeze(0).unsqueeze(-1)   # [1, Hp, Wp, 1]
    labels = window_partition(labels, ws).squeeze(-1)                         # [nW, N]
    return labels[:, None, :] != labels[:, :, None]                            # [nW, N, N]


def window_attention_mask(height: int, width: int, ws: int, shift: int,
                          device: torch.device) -> Tensor | None:
    """Additive mask [nW, N, N] for one image of an h x w map, or None when nothing is masked.

    Padding cells may only attend to padding cells of the same border region; with a shift,
    cells wrapped around by the roll may only attend to their own region. The padding regions
    are those of the un-rolled canvas even in shifted blocks: the released weights were trained
    with that placement, so it is kept.
    """
    pad_h, pad_w = -height % ws, -width % ws
    canvas_h, canvas_w = height + pad_h, width + pad_w
    masked = None
    if pad_h or pad_w:
        top, left = pad_h // 2, pad_w // 2
        masked = _region_mask(_band_labels(canvas_h, (top, top + height), device),
                              _band_labels(canvas_w, (left, left + width), device), ws)
    if shift:
        wrapped = _region_mask(_band_labels(canvas_h, (canvas_h - ws, canvas_h - shift), device),
                               _band_labels(canvas_w, (canvas_w - ws, canvas_w - shift), device), ws)
        masked = wrapped if masked is None else masked | wrapped
    if masked is None:
        return None
    return torch.zeros(masked.shape, device=device).masked_fill_(masked, MASKED)


def window_offsets(ws: int) -> Tensor:
    """Offsets from query cell i to key cell j of a window: [1, 1, 2, N, N], (dx, dy), cells."""
    ys, xs = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    xs, ys = xs.flatten().float(), ys.flatten().float()
    dx = xs[None, :] - xs[:, None]
    dy = ys[None, :] - ys[:, None]
    return torch.stack((dx, dy))[None, None]


def windowed_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float,
                       offsets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Softmax attention inside windows, with an optional per-window additive mask, and the
    attention-weighted mean of `offsets` (the motion) when they are given.

    In float32 the softmax is computed explicitly (in chunks of windows, to bound memory)
    rather than by a fused kernel: the motion branches amplify rounding differences, and this
    order of operations reproduces the released model's float32 outputs. Half precision, which
    cannot reproduce them anyway, takes `low_precision_windowed_attention`.

    q, k: [n * nW, heads, N, d]; v: [n * nW, heads, N, dv]; mask: [nW, N, N] (window k of the
    flat batch uses mask[k mod nW]) or None; offsets: [2, N, N], (x, y) from query cell i to key
    cell j. Returns ([n * nW, heads, N, dv], motion [n * nW, heads, 2, N] or None).
    """
    windows, heads, cells, _ = q.shape
    if q.dtype in (torch.bfloat16, torch.float16):
        return low_precision_windowed_attention(q, k, v, mask, scale, offsets)
    n_windows = 1 if mask is None else mask.shape[0]
    chunk = max(1, ATTENTION_CHUNK_ELEMENTS // (heads * cells * cells))
    out = v.new_empty(windows, heads, cells, v.shape[-1])
    motion = None if offsets is None else v.new_empty(windows, heads, 2, cells)
    for start in range(0, windows, chunk):
        stop = min(windows, start + chunk)
        logits = (q[start:stop] @ k[start:stop].transpose(-1, -2)) * scale   # [c, heads, N, N]
        if mask is not None:
            index = torch.arange(start, stop, device=mask.device) % n_windows
            logits += mask[index].unsqueeze(1)
            # Keep masked probabilities (~e^-100) out of float32's denormal range, where
            # x86 arithmetic is two orders of magnitude slower; their weight stays negligible.
            logits = torch.maximum(logits, logits.amax(dim=-1, keepdim=True) - SOFTMAX_FLOOR)
        probs = logits.softmax(dim=-1)
        del logits
        out[start:stop] = probs @ v[start:stop]
        if offsets is not None:
            motion[start:stop] = (probs.unsqueeze(2) * offsets).sum(dim=-1)
    return out, motion


def low_precision_windowed_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None,
                                     scale: float, offsets: Tensor | None
                                     ) -> tuple[Tensor, Tensor | None]:
    """`windowed_attention` for bf16/fp16 tensors (same shapes).

    Every attention row sums to one, so sum_j a_ij (p_j - p_i) = sum_j a_ij p_j - p_i: the key
    positions p_j are appended to the values and p_i subtracted afterwards. Masked keys are
    left out exactly (weight 0) instead of weighted ~e^-100: the same result to float
    precision, without the denormals that slow x86 kernels ~8x.
    """
    heads, cells, dv = q.shape[1], q.shape[2], v.shape[-1]
    if offsets is not None:
        positions = offsets[:, 0, :].t().to(v.dtype)                    # [N, 2] = p_j - p_0
        v = torch.cat((v, positions.expand(v.shape[0], heads, cells, 2)), dim=-1)
    allowed = None if mask is None else mask == 0                       # [nW, N, N]
    attend = _attention_in_products if q.device.type == "cpu" else _attention_fused
    out = attend(q, k, v, allowed, scale)
    if offsets is None:
        return out, None
    motion = out[..., dv:].float() - offsets[:, 0, :].t().float()      # [n * nW, heads, N, 2]
    return out[..., :dv], motion.transpose(-1, -2)


def _attention_in_products(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None,
                           scale: float) -> Tensor:
    """softmax(q k^T * scale) v as two batched matrix products around a softmax, in chunks of
    windows. On CPUs this is 1.3-2.6x faster than `scaled_dot_product_attention`, whose fused
    kernel is built for long sequences, not 64-144-cell windows.

    q, k: [n * nW, heads, N, d]; v: [n * nW, heads, N, dv]; allowed: [nW, N, N] boolean or
    None. Returns [n * nW, heads, N, dv].
    """
    windows, heads, cells, _ = q.shape
    n_windows = 1 if allowed is None else allowed.shape[0]
    per_window = heads * cells * cells
    blocked = None if allowed is None else ~allowed[:, None]               # [nW, 1, N, N]
    if n_windows * per_window <= ATTENTION_CHUNK_ELEMENTS:
        chunk = ATTENTION_CHUNK_ELEMENTS // (n_windows * per_window) * n_windows  # whole images
    else:
        chunk = max(1, ATTENTION_CHUNK_ELEMENTS // per_window)    # part of one image at a time
    out = v.new_empty(windows, heads, cells, v.shape[-1])
    start = 0
    while start < windows:
        # Chunks of whole images, or parts that do not cross from one image into the next.
        stop = min(windows, start + chunk, start - start % n_windows + max(chunk, n_windows))
        logits = (q[start:stop] * scale) @ k[start:stop].transpose(-1, -2)  # [c, heads, N, N]
        if blocked is not None:
            if stop - start >= n_windows:
                logits.view(-1, n_windows, heads, cells, cells).masked_fill_(blocked, float("-inf"))
            else:
                first = start % n_windows
                logits.masked_fill_(blocked[first:first + stop - start], float("-inf"))
        out[start:stop] = logits.softmax(dim=-1) @ v[start:stop]
        del logits
        start = stop
    return out


def _attention_fused(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None,
                     scale: float) -> Tensor:
    """`_attention_in_products` through one `scaled_dot_product_attention` call (GPUs)."""
    n_windows = 1 if allowed is None else allowed.shape[0]
    heads = q.shape[1]
    width = v.shape[-1]
    # One width for q, k and v, a multiple of 8: CUDA's flash and memory-efficient kernels take
    # 16-bit heads only so (others fall back to the unfused one). Zero columns leave q.k
    # unchanged and add output columns that are dropped.
    padded = -(-max(width, q.shape[-1]) // 8) * 8
    q, k, v = (F.pad(t, (0, padded - t.shape[-1])) if t.shape[-1] != padded else t
               for t in (q, k, v))
    if allowed is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)[..., :width]
    # Window index first, so that the [nW, 1, N, N] mask broadcasts over images and heads.
    q, k, v = (rearrange(t, "(b w) h t d -> w (b h) t d", w=n_windows) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed.unsqueeze(1), scale=scale)
    return rearrange(out[..., :width], "w (b h) t d -> (b w) h t d", h=heads)


class AttentionToMotion(nn.Module):
    """Cross attention between co-located windows of the two frames that also returns motion.

    Queries come from a window of one frame, keys and values from the same window of the
    other frame. The motion of query cell i is the attention-weighted mean offset to the
    key cells, sum_j a_ij (p_j - p_i), per head, in cells of this level; a small MLP, shared
    by x and y, fuses the heads' motions. The offsets p_j - p_i are the `relative_coord`
    buffer of the released checkpoints.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.register_buffer("relative_coord", window_offsets(window_size))  # [1, 1, 2, N, N]
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(num_heads, num_heads // 2), nn.GELU(),
                                 nn.Linear(num_heads // 2, 1))

    def forward(self, z: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """z: [2B * nW, N, D] normalised window tokens, frame 0's windows first.
        mask: [nW, N, N] additive, or None.

        Returns the attended appearance [2B * nW, N, D] and the motion [2B * nW, N, 2] of
        every query cell towards the other frame, in cells, x then y.
        """
        windows, cells, dim = z.shape
        heads = self.num_heads
        q = rearrange(self.q(z), "n t (h d) -> n h t d", h=heads)
        kv = self.kv(z)
        kv = torch.cat((kv[windows // 2:], kv[:windows // 2]))          # the other frame's windows
        k, v = rearrange(kv, "n t (two h d) -> two n h t d", two=2, h=heads)
        out, head_motion = windowed_attention(q, k, v, mask, self.scale,
                                              self.relative_coord[0, 0])  # motion [nWB, h, 2, N]
        appearance = self.proj(rearrange(out, "n h t d -> n t (h d)"))
        motion = self.mlp(rearrange(head_motion, "n h c t -> n t c h").to(z.dtype)).squeeze(-1)
        return appearance, motion


class WindowSelfAttention(nn.Module):
    """Multi-head self attention inside each window (no position bias)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, z: Tensor, mask: Tensor | None) -> tuple[Tensor, None]:
        """z: [n * nW, N, D]; mask: [nW, N, N] additive, or None -> ([n * nW, N, D], None)."""
        q, k, v = rearrange(self.qkv(z), "n t (three h d) -> three n h t d", three=3,
                            h=self.num_heads)
        out, _ = windowed_attention(q, k, v, mask, self.scale)
        return self.proj(rearrange(out, "n h t d -> n t (h d)")), None


class DepthwiseConv(nn.Module):
    """3x3 depthwise convolution applied to a token map."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: Tensor) -> Tensor:
        """x: [n, h, w, D] -> [n, h, w, D] (convolved channels-last, without a layout copy)."""
        return self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class DepthwiseConvMlp(nn.Module):
    """Token MLP with a depthwise convolution between the two layers: fc1 -> dwconv -> GELU -> fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DepthwiseConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """x: [n, h, w, D] -> [n, h, w, D].

        Large maps run in bands of rows (each with a one-row halo for the 3x3 convolution), so
        the hidden activations, `mlp_ratio` times wider than the tokens, exist for one band only.
        """
        n, height, width, _ = x.shape
        rows = max(1, MLP_BAND_ELEMENTS // (n * width * self.fc1.out_features))
        if rows >= height:
            return self.fc2(self.act(self.dwconv(self.fc1(x))))
        out = x.new_empty(n, height, width, self.fc2.out_features)
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            first, last = max(0, top - 1), min(height, bottom + 1)   # band plus halo rows
            # Contiguous, so that fc1 is one matrix product: on a strided band it would
            # broadcast its weight over a batched product, which copies it once per row.
            band = x[:, first:last].contiguous()
            hidden = self.dwconv(self.fc1(band))[:, top - first:bottom - first]
            out[:, top:bottom] = self.fc2(self.act(hidden))
        return out


class WindowBlock(nn.Module):
    """One transformer block on (optionally shifted) windows, with motion when the attention
    is `AttentionToMotion`.

    The attention output is added to the normalised window tokens, not to the block input:
    the released weights were trained that way.
    """

    def __init__(self, attn: nn.Module, dim: int, window_size: int, shift: int, mlp_ratio: int):
        super().__init__()
        self.window_size, self.shift = window_size, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = attn
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = DepthwiseConvMlp(dim, mlp_ratio * dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """x: [n, h, w, D] -> (x: [n, h, w, D], motion: [n, h, w, 2] cells, x then y, or None)."""
        n, height, width, _ = x.shape
        ws, shift = self.window_size, self.shift
        pad_h, pad_w = -height % ws, -width % ws
        top, left = pad_h // 2, pad_w // 2
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, left, pad_w - left, top, pad_h - top))
        canvas_h, canvas_w = height + pad_h, width + pad_w
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        mask = window_attention_mask(height, width, ws, shift, x.device)
        z = self.norm1(window_partition(x, ws))                          # [n * nW, N, D]
        appearance, motion = self.attn(z, mask)
        maps = [window_reverse(z + appearance, ws, canvas_h, canvas_w)]
        if motion is not None:
            maps.append(window_reverse(motion, ws, canvas_h, canvas_w))
        if shift:
            maps = [torch.roll(m, shifts=(shift, shift), dims=(1, 2)) for m in maps]
        maps = [m[:, top:top + height, left:left + width] for m in maps]
        x = maps[0].contiguous()
        x = x + self.mlp(self.norm2(x))
        return x, (maps[1] if motion is not None else None)


class ATMFormer(nn.Sequential):
    """Two attention-to-motion blocks, unshifted then shifted by half a window."""

    def __init__(self, dim: int, num_heads: int, window_size: int, mlp_ratio: int):
        super().__init__(*(
            WindowBlock(AttentionToMotion(dim, num_heads, window_size), dim, window_size,
                        shift, mlp_ratio)
            for shift in (0, window_size // 2)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: [2B, h, w, D] -> (x: [2B, h, w, D], motion: [B, 8, h, w]).

        Motion channels: block 0 (frame 0 x, y, frame 1 x, y), then block 1 likewise; cells
        of this level, from each frame towards the other.
        """
        motions = []
        for block in self:
            x, motion = block(x)
            motions.append(rearrange(motion, "(f b) h w c -> b (f c) h w", f=2))
        return x, torch.cat(motions, dim=1)


class FeatureEnhancer(nn.Sequential):
    """Two Swin self-attention blocks (unshifted, shifted) refining the local tokens."""

    def __init__(self, dim: int, num_heads: int, window_size: int, mlp_ratio: int):
        super().__init__(*(
            WindowBlock(WindowSelfAttention(dim, num_heads), dim, window_size, shift, mlp_ratio)
            for shift in (0, window_size // 2)))

    def forward(self, x: Tensor) -> Tensor:
        """x: [n, h, w, D] -> [n, h, w, D]."""
        for block in self:
            x, _ = block(x)
        return x
