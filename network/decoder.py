"""Synthesis: the coarse-to-fine motion decoder and the residual refinement U-Net."""
from torch import nn

from .blocks import PReLU, conv_prelu, deconv_prelu


def decoder_stage(in_ch: int, out_ch: int, activate_input: bool) -> nn.Sequential:
    """Double the size: [PReLU] -> 2x2 deconv unit -> 3x3 conv unit -> plain 3x3 conv.

    The last `motion_out_dim` output channels are the motion of that level; the input
    activation (stages after the first) also applies to the previous level's motion channels.
    """
    layers = [PReLU(in_ch, inplace=False)] if activate_input else []   # z's views live on
    layers += [deconv_prelu(in_ch, out_ch), conv_prelu(out_ch, out_ch),
               nn.Conv2d(out_ch, out_ch, 3, 1, 1)]
    return nn.Sequential(*layers)


def refinement_modules(in_ch: int, width: int, skip_dims: tuple[int, int]) -> dict[str, nn.Module]:
    """Modules of the refinement U-Net, keyed by their (top-level) state-dict names.

    The U-Net predicts a residual in (-1, 1) for the blended full-resolution frame; three
    stride-2 levels, whose encoder also takes the decoder's features at 1/2 and 1/4.
    `Network.refine` runs it.

    in_ch: channels of the full-resolution input; width r: channels at full resolution;
    skip_dims: decoder feature channels at 1/2 and 1/4 fed into the U-Net encoder.
    """
    r = width
    half_dim, quarter_dim = skip_dims
    return {
        "proj": conv_prelu(in_ch, r),
        "down1": nn.Sequential(conv_prelu(r, r, 2)),
        "down2": nn.Sequential(conv_prelu(r + half_dim, 2 * r, 2), conv_prelu(2 * r, 2 * r)),
        "down3": nn.Sequential(conv_prelu(2 * r + quarter_dim, 4 * r, 2), conv_prelu(4 * r, 4 * r),
                               conv_prelu(4 * r, 4 * r)),
        "up1": nn.Sequential(deconv_prelu(4 * r, 2 * r), conv_prelu(2 * r, 2 * r)),
        "up2": nn.Sequential(deconv_prelu(4 * r, 2 * r), conv_prelu(2 * r, r)),
        "up3": nn.Sequential(deconv_prelu(2 * r, r)),
        "refine_head": nn.Sequential(conv_prelu(2 * r, r), conv_prelu(r, 3)),
    }
