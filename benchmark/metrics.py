"""Image-quality metrics of the ATM-VFI benchmark protocols, as the authors' benchmark scripts compute them.

Images are tensors [B, 3, H, W], RGB, values in [0, 1]. Both metrics return a Python float.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_PAD = 5  # fixed, even when the window shrinks for images smaller than 11 px


def psnr(pred: Tensor, gt: Tensor) -> float:
    """-10·log10(mean((gt - pred)²)), MAX = 1, computed in the dtype of the arguments.

    The caller chooses the precision (float64 for Vimeo90K and SNU-FILM, float32 for UCF101 and
    Xiph) by converting both tensors before the call.
    """
    if pred.shape != gt.shape or pred.dtype != gt.dtype:
        raise ValueError(f"psnr needs equal shapes and dtypes, got {pred.shape}/{pred.dtype} "
                         f"and {gt.shape}/{gt.dtype}")
    mse = torch.mean((gt - pred) ** 2).item()
    return -10.0 * math.log10(mse) if mse > 0 else math.inf


def gaussian_taps(size: int, sigma: float = SSIM_SIGMA) -> Tensor:
    """1-D Gaussian [size], centred on tap size//2, normalised to sum 1, float32."""
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    taps = torch.exp(-offsets ** 2 / (2.0 * sigma ** 2)).float()
    return taps / taps.sum()


def gaussian_window_3d(size: int, sigma: float = SSIM_SIGMA) -> Tensor:
    """3-D window w[a, b, c] = g[a]·g[b]·g[c] of the 1-D Gaussian g: [1, 1, size, size, size], float32."""
    taps = gaussian_taps(size, sigma)
    return (taps[:, None, None] * taps[None, :, None] * taps[None, None, :])[None, None]


def _gaussian_filter_3d(volume: Tensor, window: Tensor) -> Tensor:
    """Replicate-pad [N, 1, D, H, W] by SSIM_PAD on all three axes, then correlate (valid) with the
    window [1, 1, n, n, n] -> [N, 1, D+2·pad-n+1, H+2·pad-n+1, W+2·pad-n+1].

    One float32 convolution with the full n³ window, not three 1-D passes: the float32 rounding of
    this sum is part of the published scores (on real frames the separable form, or float64,
    moves SSIM by up to ~1.5e-4 through the cancellation in E[x²] - μ²).
    """
    pad = SSIM_PAD
    return F.conv3d(F.pad(volume, (pad, pad, pad, pad, pad, pad), mode="replicate"), window)


def ssim_matlab(x: Tensor, y: Tensor) -> float:
    """SSIM of the ATM-VFI protocols: the 3-D Gaussian "ssim_matlab" variant.

    x, y: [B, 3, H, W]. Each image is treated as a single-channel volume of depth 3 (the colour
    axis), replicate-padded by 5 on depth, height and width and filtered with an 11×11×11
    Gaussian (σ = 1.5, window shrunk to min(11, H, W)), so colour channels mix. The dynamic range
    L comes from the first argument (1 for [0, 1] images). Returns the mean of the SSIM map.
    Computed in float32 on the arguments' device.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim_matlab needs two [B, C, H, W] tensors of one shape, "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.float(), y.float()
    max_val = 255.0 if x.max().item() > 128 else 1.0
    min_val = -1.0 if x.min().item() < -0.5 else 0.0
    dynamic_range = max_val - min_val
    c1 = (0.01 * dynamic_range) ** 2
    c2 = (0.03 * dynamic_range) ** 2

    height, width = x.shape[-2:]
    window = gaussian_window_3d(min(SSIM_WINDOW, height, width)).to(x.device)
    batch = x.shape[0]
    x, y = x.unsqueeze(1), y.unsqueeze(1)  # [B, 1, 3, H, W], depth = colour
    # The five filtered statistics in one call: [5B, 1, D, H, W] -> five [B, 1, D, H, W].
    stats = _gaussian_filter_3d(torch.cat([x, y, x * x, y * y, x * y]), window)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(batch)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x, var_y, cov_xy = e_xx - mu_xx, e_yy - mu_yy, e_xy - mu_xy
    ssim_map = ((2 * mu_xy + c1) * (2 * cov_xy + c2)) / ((mu_xx + mu_yy + c1) * (var_x + var_y + c2))
    return ssim_map.mean().item()


def quantize_8bit(image: Tensor) -> Tensor:
    """round(255·image)/255 (half to even), same dtype: the prediction as an 8-bit image would
    store it (UCF101 protocol)."""
    return torch.round(image * 255) / 255
