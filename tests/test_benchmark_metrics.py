"""benchmark.metrics against hand-computed values and the protocol's own description."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.metrics import gaussian_taps, psnr, quantize_8bit, ssim_matlab

# SSIM treats RGB as a third axis (the authors' ssim_matlab): weight of input channel (columns
# R, G, B) in each output channel (rows) after the 11-tap depth Gaussian folded by the replicate padding of 5.
COLOUR_MIX = np.array([[0.633006, 0.213006, 0.153989],
                       [0.366994, 0.266012, 0.366994],
                       [0.153989, 0.213006, 0.633006]])


def constant_image(values, height=16, width=20) -> torch.Tensor:
    """[1, 3, H, W] with one constant per channel."""
    return torch.tensor(values, dtype=torch.float32).reshape(1, 3, 1, 1).expand(1, 3, height, width).clone()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_psnr_of_a_uniform_error_of_one_tenth_is_20_db(dtype):
    gt = torch.zeros(1, 3, 8, 8, dtype=dtype)
    assert psnr(gt + 0.1, gt) == pytest.approx(20.0, abs=1e-5)


def test_psnr_mean_squared_error_over_all_values():
    gt = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    pred = gt.clone()
    pred[0, 0, 0, 0] = 0.6          # MSE = 0.36 / 12 = 0.03
    assert psnr(pred, gt) == pytest.approx(-10 * math.log10(0.03), abs=1e-12)
    assert psnr(gt, gt) == math.inf


def test_psnr_rejects_mixed_precision():
    with pytest.raises(ValueError):
        psnr(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2, dtype=torch.float64))


def test_gaussian_taps_fold_into_the_protocol_colour_mix():
    taps = gaussian_taps(11).double().numpy()
    assert taps.sum() == pytest.approx(1.0, abs=1e-6)
    fold = np.zeros((3, 3))
    for out_channel in range(3):
        for tap in range(11):       # padded depth index out_channel + tap, pad 5 -> clamp to 0..2
            fold[out_channel, min(max(out_channel + tap - 5, 0), 2)] += taps[tap]
    np.testing.assert_allclose(fold, COLOUR_MIX, atol=1e-6)


def test_ssim_of_identical_images_is_one():
    image = torch.rand(2, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    assert ssim_matlab(image, image) == pytest.approx(1.0, abs=1e-6)


def test_ssim_of_two_grey_images_is_the_luminance_term():
    a, b, c1 = 0.2, 0.7, 1e-4
    expected = (2 * a * b + c1) / (a * a + b * b + c1)   # no variance, no covariance
    # float32 cancellation in E[x²] - μ² leaves ~1e-8 of variance against C2 = 9e-4
    assert ssim_matlab(constant_image([a] * 3), constant_image([b] * 3)) == pytest.approx(expected, abs=2e-4)


def test_ssim_mixes_colour_channels_with_the_folded_depth_gaussian():
    x, y = np.array([0.9, 0.1, 0.4]), np.array([0.3, 0.8, 0.5])
    c1, c2 = 1e-4, 9e-4
    mu_x, mu_y = COLOUR_MIX @ x, COLOUR_MIX @ y
    var_x = COLOUR_MIX @ (x * x) - mu_x ** 2
    var_y = COLOUR_MIX @ (y * y) - mu_y ** 2
    cov = COLOUR_MIX @ (x * y) - mu_x * mu_y
    per_channel = (((2 * mu_x * mu_y + c1) * (2 * cov + c2))
                   / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)))
    assert ssim_matlab(constant_image(x), constant_image(y)) == pytest.approx(per_channel.mean(), abs=2e-5)


def direct_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """The SSIM definition written literally: one 11x11x11 window, conv3d, float64."""
    g = torch.exp(-(torch.arange(11, dtype=torch.float64) - 5) ** 2 / 4.5)
    g = g / g.sum()
    window = (g[:, None, None] * g[None, :, None] * g[None, None, :])[None, None]

    def filt(v):
        return F.conv3d(F.pad(v.unsqueeze(1), (5,) * 6, mode="replicate"), window)

    x, y = x.double(), y.double()
    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x ** 2
    var_y = filt(y * y) - mu_y ** 2
    cov = filt(x * y) - mu_x * mu_y
    ssim_map = (((2 * mu_x * mu_y + 1e-4) * (2 * cov + 9e-4))
                / ((mu_x ** 2 + mu_y ** 2 + 1e-4) * (var_x + var_y + 9e-4)))
    return ssim_map.mean().item()


def test_ssim_equals_the_literal_3d_window_definition():
    generator = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 20, 28, generator=generator)
    pred = (gt + 0.2 * torch.randn(2, 3, 20, 28, generator=generator)).clamp(0, 1)
    assert ssim_matlab(gt, pred) == pytest.approx(direct_ssim(gt, pred), abs=1e-6)


def test_ssim_dynamic_range_comes_from_the_first_argument():
    # Low-contrast images, where C1 and C2 matter: L = 255 is chosen for 0..255 images, so the
    # score equals that of the same images in [0, 1]; images up to ~55 keep L = 1 and score ~0.
    generator = torch.Generator().manual_seed(2)
    x = 0.5 + 0.01 * torch.randn(1, 3, 24, 24, generator=generator)
    y = 0.5 + 0.01 * torch.randn(1, 3, 24, 24, generator=generator)
    assert ssim_matlab(x * 255, y * 255) == pytest.approx(ssim_matlab(x, y), abs=1e-4)
    assert abs(ssim_matlab(x * 100, y * 100)) < 0.05 < ssim_matlab(x, y) - 0.5


def test_quantize_8bit_rounds_to_the_nearest_level():
    values = torch.tensor([0.0, 0.101, 0.499, 1.0])          # x255: 0, 25.755, 127.245, 255
    expected = torch.tensor([0.0, 26.0, 127.0, 255.0]) / 255
    torch.testing.assert_close(quantize_8bit(values), expected, rtol=0, atol=0)
    halves = torch.tensor([0.5, 1.5, 2.5, 3.5], dtype=torch.float64) / 255  # x255: exact halves
    assert (halves * 255).tolist() == [0.5, 1.5, 2.5, 3.5]
    assert (quantize_8bit(halves) * 255).tolist() == [0.0, 2.0, 2.0, 4.0]    # to the even level
