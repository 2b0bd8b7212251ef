"""Variant configurations of ATM-VFI: the base and lite models differ only in these numbers."""
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class NetworkConfig:
    """Every constructor constant of the network (values: the authors' two variants; see `VARIANTS`)."""

    name: str                          # variant name, "base" or "lite"
    hidden_dims: tuple[int, ...]       # encoder channels at 1, 1/2, 1/4, 1/8 of the input size
    last_feat_extra: int               # channels added by the 1/16 encoder level (global branch)
    mlp_ratio: int                     # transformer MLP hidden width / token width
    local_head_ratio: float            # local motion head hidden width / (2 x local token width)
    global_head_hidden: int | None     # global motion head hidden width; None: 2 x global token width x 0.5
    refine_width: int                  # channels of the refinement U-Net at full resolution
    num_heads: int = 8                 # attention heads in every transformer block
    local_window: int = 8              # window side of the local ATMFormer and the enhancer, 1/8 pixels
    global_window: int = 12            # window side of the global ATMFormer, 1/16 pixels
    motion_out_dim: int = 5            # flow t->0 (x, y), flow t->1 (x, y), occlusion logit

    @property
    def local_dim(self) -> int:
        """Token width at 1/8: the fused encoder channels, in concatenation order 1/4, 1/2 (plain),
        1/2 (dilated), 1/8."""
        d = self.hidden_dims
        return d[3] + d[2] + 2 * d[1]

    @property
    def last_feat_dim(self) -> int:
        """Encoder channels at 1/16."""
        return self.hidden_dims[3] + self.last_feat_extra

    @property
    def global_dim(self) -> int:
        """Token width at 1/16: fused (1/4, 1/4, 1/8, 1/16) encoder channels."""
        d = self.hidden_dims
        return self.last_feat_dim + d[3] + 2 * d[2]

    @property
    def local_head_hidden(self) -> int:
        return int(2 * self.local_dim * self.local_head_ratio)

    @property
    def global_head_width(self) -> int:
        if self.global_head_hidden is not None:
            return self.global_head_hidden
        return int(2 * self.global_dim * 0.5)

    @property
    def decoder_dims(self) -> tuple[int, int, int, int]:
        """Decoder feature channels at 1/8, 1/4, 1/2, 1 (motion channels excluded)."""
        f = 2 * self.local_dim
        return f, f // 2, f // 4, f // 8


BASE = NetworkConfig(name="base", hidden_dims=(24, 48, 96, 192), last_feat_extra=96, mlp_ratio=4,
                     local_head_ratio=0.75, global_head_hidden=768, refine_width=64)
LITE = replace(BASE, name="lite", hidden_dims=(16, 32, 64, 96), last_feat_extra=32, mlp_ratio=2,
               local_head_ratio=0.5, global_head_hidden=None, refine_width=32)
VARIANTS = {config.name: config for config in (BASE, LITE)}
