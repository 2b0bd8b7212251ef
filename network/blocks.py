"""Convolution units used throughout the network (state-dict layout `<name>.0` conv, `<name>.1` PReLU)."""
from torch import nn


def conv_prelu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (zero padding 1) followed by a per-channel PReLU."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1), nn.PReLU(out_ch))


def deconv_prelu(in_ch: int, out_ch: int) -> nn.Sequential:
    """2x2 stride-2 transposed convolution (exactly doubles H and W) followed by a PReLU."""
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 2, 2), nn.PReLU(out_ch))
