"""Training losses: values worked out by hand, level counts, VGG weights handling."""
import pytest
import torch
import torchvision

from loss import (PerceptualStyleLoss, gram_matrix, laplacian_loss, laplacian_pyramid,
                  load_vgg19_features, warping_loss)
from network import UserError


def stripes(height: int, width: int, batch: int = 2) -> torch.Tensor:
    """(-1)^x columns: the binomial blur maps them to exactly 0 (1-4+6-4+1 = 0), reflected
    borders included, so the whole pattern sits in the finest band-pass level."""
    row = torch.tensor([(-1.0) ** x for x in range(width)])
    return row.expand(batch, 3, height, width).clone()


def test_pyramid_levels_halve_in_size():
    bands = laplacian_pyramid(torch.rand(1, 3, 64, 48), 5)
    assert [tuple(b.shape[-2:]) for b in bands] == [(64, 48), (32, 24), (16, 12), (8, 6), (4, 3)]


def test_constant_offset_costs_nothing():
    # Blur and up-sampling reproduce a constant exactly; the low-pass remainder is unpenalised.
    image = torch.rand(2, 3, 64, 64)
    assert laplacian_loss(image + 0.3, image).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("levels", [1, 3, 5])
def test_finest_stripes_cost_their_mean_amplitude(levels):
    target = torch.rand(2, 3, 32, 32)
    pred = target + 0.2 * stripes(32, 32)
    assert laplacian_loss(pred, target, levels).item() == pytest.approx(0.2, rel=1e-5)


def test_tiny_maps_repeat_their_borders():
    # 64-pixel crops reach 2x2 maps in the warping loss, where reflection is undefined and the
    # border is repeated instead. Worked by hand for a constant offset of 0.3 on a 4x4 map, two
    # levels: the 4x4 level (reflected) reproduces the constant, so its band is 0; at 2x2 the
    # remainder 0.3 sits at (0, 0) of a zero map, and the repeated border makes the 1-D up-sampling
    # filter (2/16)(1, 4, 6, 4, 1) give g = (11/8, 5/8), so the band is 0.3 (1 - g g^T):
    # |.| summed = 0.3 (57 + 9 + 9 + 39) / 64, mean 0.3 x 57/128.
    image = torch.rand(1, 3, 4, 4)
    assert laplacian_loss(image + 0.3, image, 2).item() == pytest.approx(0.3 * 57 / 128, rel=1e-6)


def test_warping_loss_uses_5_5_4_3_2_levels_per_scale():
    torch.manual_seed(0)
    gt = torch.rand(2, 3, 64, 64)
    preds = [torch.rand(2, 3, 64 >> s, 64 >> s) for s in range(5)]
    targets = [gt]
    for s in range(1, 5):
        targets.append(torch.nn.functional.interpolate(targets[-1], scale_factor=0.5,
                                                       mode="bilinear", align_corners=True))
    expected = sum(laplacian_loss(p, t, n) for p, t, n in zip(preds, targets, (5, 5, 4, 3, 2)))
    torch.testing.assert_close(warping_loss(preds, gt), expected)


def test_only_the_mismatched_scale_counts():
    gt = torch.full((1, 3, 64, 64), 0.5)
    preds = [torch.full((1, 3, 64 >> s, 64 >> s), 0.5) for s in range(4)]
    preds[2] = preds[2] + 0.1 * stripes(16, 16, batch=1)
    assert warping_loss(preds, gt).item() == pytest.approx(0.1, rel=1e-5)


def test_main_term_is_unchanged_by_the_warping_loss():
    # The authors' LapLoss kept the level count of the last warping scale (official defect).
    torch.manual_seed(1)
    pred, gt = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    before = laplacian_loss(pred, gt)
    warping_loss([pred, pred[..., ::2, ::2]], gt)
    assert laplacian_loss(pred, gt).item() == before.item()


def test_gram_matrix_by_hand():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)   # C=2, H=1, W=2
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]])
    torch.testing.assert_close(gram_matrix(features), expected)


class Double(torch.nn.Module):
    def forward(self, x):
        return 2 * x


def doubling_features() -> torch.nn.Sequential:
    """36 layers like vgg19().features: identities, except layer 17 (conv3_4's ReLU) doubles."""
    layers = [torch.nn.Identity() for _ in range(36)]
    layers[17] = Double()
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("official, block_gains", [(False, (1, 1, 2, 2, 2)), (True, (1, 1, 2, 4, 4))])
def test_perceptual_and_style_by_hand(official, block_gains):
    # One pixel whose ImageNet-normalised value is v = (1, -2, 0.5) against a target normalised to
    # 0. Block b's features are k_b v, k_b = 2 once layer 17 has run (twice in the authors' 4th
    # block, which starts at layer 16): perceptual = sum k_b mean|v| = sum k_b x 7/6; the Gram
    # matrix of one pixel is k_b^2 v v^T, so style = sum k_b^4 mean((v v^T)^2) = sum k_b^4 |v|^4 / 9.
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    v = torch.tensor([1.0, -2.0, 0.5])
    pred = (mean + std * v).view(1, 3, 1, 1).requires_grad_()
    target = mean.view(1, 3, 1, 1).clone().requires_grad_()
    perceptual, style = PerceptualStyleLoss(doubling_features(), official_blocks=official)(pred, target)
    gains = torch.tensor(block_gains, dtype=torch.float64)
    assert perceptual.item() == pytest.approx(gains.sum().item() * 7 / 6, rel=1e-5)
    assert style.item() == pytest.approx((gains ** 4).sum().item() * 5.25 ** 2 / 9, rel=1e-5)
    perceptual.backward()
    # d/d pred_c of sum k_b mean_c |v_c| = sum k_b sign(v_c) / (3 std_c); the target is detached.
    torch.testing.assert_close(pred.grad.flatten(), gains.sum().float() * v.sign() / (3 * std))
    assert target.grad is None


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """A randomly initialised torchvision VGG19 state_dict (its `features` part) on disk."""
    torch.manual_seed(0)
    state = torchvision.models.vgg19(init_weights=False).features.state_dict()
    state = {f"features.{k}": v for k, v in state.items()}
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(state, path)
    return path, state


def test_vgg_weights_load_from_a_local_file(vgg_weights):
    path, state = vgg_weights
    features = load_vgg19_features(path)
    torch.testing.assert_close(features[0].weight, state["features.0.weight"])
    assert not any(p.requires_grad for p in features.parameters())


def test_missing_vgg_weights_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="not found"):
        load_vgg19_features(tmp_path / "absent.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_cache"))
    with pytest.raises(UserError, match="--vgg_weights"):
        load_vgg19_features()


def test_vgg_weights_that_are_no_checkpoint_are_a_clear_error(tmp_path):
    page = tmp_path / "vgg19.pth"
    page.write_text("<html>Google Drive - Virus scan warning</html>")   # a failed download
    with pytest.raises(UserError, match=f"^VGG19 weights: {page} is not a PyTorch checkpoint$"):
        load_vgg19_features(page)


def test_perceptual_and_style(vgg_weights):
    features = load_vgg19_features(vgg_weights[0])
    loss = PerceptualStyleLoss(features)
    torch.manual_seed(2)
    gt = torch.rand(1, 3, 32, 32)
    same = loss(gt.clone(), gt)
    assert same[0].item() == 0 and same[1].item() == 0
    pred = torch.rand(1, 3, 32, 32, requires_grad=True)
    perceptual, style = loss(pred, gt)
    assert perceptual.item() > 0 and style.item() > 0
    (perceptual + style).backward()
    assert pred.grad.abs().sum() > 0
    official = PerceptualStyleLoss(features, official_blocks=True)
    assert official(pred, gt)[0].item() != pytest.approx(perceptual.item())
    assert not loss.train().training                     # stays frozen in eval mode
