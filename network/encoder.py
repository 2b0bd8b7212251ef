"""CNN feature pyramid and the fusion of three of its levels into transformer tokens."""
import torch
from torch import Tensor, nn

from .blocks import conv_prelu, map_row_bands


class FeaturePyramid(nn.ModuleList):
    """Four levels of two 3x3 conv units each; levels 1-3 halve the size (ceil(n / 2)).

    Level i has `dims[i]` channels at 1/2^i of the input size.
    """

    def __init__(self, dims: tuple[int, ...]):
        in_dims = (3, *dims[:-1])
        super().__init__(
            nn.Sequential(conv_prelu(c_in, c_out, 1 if i == 0 else 2), conv_prelu(c_out, c_out))
            for i, (c_in, c_out) in enumerate(zip(in_dims, dims)))

    # The two finest levels run in bands of rows, so the temporaries of their convolutions (in
    # float32, oneDNN's reordered copies of input and output) exist for one band at a time:
    # (scale, halo) of each, the halo being the input rows two 3x3 convolutions reach.
    BANDED_LEVELS = ((1, 2), (0.5, 4))

    def forward(self, frames: Tensor) -> list[Tensor]:
        """frames: [n, 3, H, W] -> [f1, f2, f3]: [n, dims[i], H/2^i, W/2^i] for i = 1, 2, 3."""
        features = []
        x = frames
        for index, level in enumerate(self):
            if index < len(self.BANDED_LEVELS):
                scale, halo = self.BANDED_LEVELS[index]
                x = map_row_bands(level, [x], scale=scale, halo=halo)
            else:
                x = level(x)
            features.append(x)
        return features[1:]


class CrossScaleFeatureFusion(nn.Module):
    """Fuse three pyramid levels (each half the size of the previous) at the coarsest size.

    The middle level is brought down by a stride-2 conv, the finest by two stride-4 convs
    (plain and dilated); they are concatenated with the coarsest level in the order
    (middle, finest, finest dilated, coarsest), projected 1x1 and layer-normalised.
    """

    def __init__(self, in_dims: tuple[int, int, int], fused_dim: int):
        super().__init__()
        fine, middle, coarse = in_dims
        self.layers = nn.ModuleList([
            nn.Conv2d(middle, middle, 3, stride=2, padding=1),
            nn.Conv2d(fine, fine, 3, stride=4, padding=1),
            nn.Conv2d(fine, fine, 3, stride=4, padding=2, dilation=2),
        ])
        self.proj = nn.Conv2d(middle + 2 * fine + coarse, fused_dim, 1)
        self.norm = nn.LayerNorm(fused_dim)

    def forward(self, fine: Tensor, middle: Tensor, coarse: Tensor) -> Tensor:
        """fine: [n, a, 4R, 4R'], middle: [n, b, 2R, 2R'], coarse: [n, c, R, R'] -> [n, R, R', D]."""
        fused = torch.cat([self.layers[0](middle), self.layers[1](fine), self.layers[2](fine),
                           coarse], dim=1)
        return self.norm(self.proj(fused).permute(0, 2, 3, 1))
