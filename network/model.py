"""ATM-VFI: the network that puts encoder, ATMFormers, decoder and refinement together."""
import math

import torch
from einops import rearrange
from timm.layers import trunc_normal_
from torch import Tensor, nn

from .atm import ATMFormer, DepthwiseConv, FeatureEnhancer
from .blocks import conv_prelu, map_row_bands, split_channels
from .config import BASE, VARIANTS, NetworkConfig
from .decoder import decoder_stage, refinement_modules
from .encoder import CrossScaleFeatureFusion, FeaturePyramid
from .warp import downsample_half, upsample_flow, warp_backward

MOTION_CHANNELS = 8  # ATMFormer motion: 2 blocks x 2 frames x (x, y)
SYNTHESIS_MODULES = ("upsample_pyramid", "proj", "down1", "down2", "down3", "up1", "up2", "up3",
                     "refine_head")
LOCAL_MODULES = ("feat_extracts", "cross_scale_feature_fusion", "feat_enhance_transformer",
                 "local_motion_atmformer", "local_motion_mlp", *SYNTHESIS_MODULES)
GLOBAL_MODULES = ("last_feat_extract", "global_feature_fusion", "global_motion_atmformer",
                  "global_motion_mlp")


def _init_transformer_weights(module: nn.Module) -> None:
    """Initialisation for training from scratch (loaded weights replace it): linear layers
    truncated-normal (std 0.02) with zero bias, layer norms identity, and the convolutions of
    the transformers and token fusions normal with std sqrt(2 / fan_out). The CNN
    convolutions keep PyTorch's default."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, (CrossScaleFeatureFusion, DepthwiseConv)):
        for conv in module.modules():
            if isinstance(conv, nn.Conv2d):
                fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
                nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(conv.bias)


def motion_head(in_ch: int, hidden: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 conv units and a 1x1 conv: [motion, frame-0 tokens, frame-1 tokens] -> motion."""
    return nn.Sequential(conv_prelu(in_ch, hidden), conv_prelu(hidden, hidden),
                         nn.Conv2d(hidden, out_ch, 1))


def flows_as_pair_batch(motion: Tensor) -> Tensor:
    """[B, >=4, h, w] (flow t->0 x, y, flow t->1 x, y, ...) -> [2B, 2, h, w], frame 0's first."""
    return torch.cat((motion[:, 0:2], motion[:, 2:4]))


def runs_in_low_precision(x: Tensor) -> bool:
    """True under bf16/fp16 autocast on x's device, or when x itself is bf16/fp16."""
    return torch.is_autocast_enabled(x.device.type) or x.dtype in (torch.bfloat16, torch.float16)


def head_input(motion: Tensor, tokens: Tensor) -> Tensor:
    """motion: [B, 8, h, w]; tokens: [2B, h, w, D] -> [B, 8 + 2D, h, w].

    In float32, contiguous rather than a channels-last view, so that the motion head's
    convolutions round as the reference's do: the global motion feeds a pre-warp that
    amplifies any difference some hundred times. In low precision, channels-last.
    """
    features = rearrange(tokens, "(f b) h w d -> b h w (f d)", f=2)
    nhwc = torch.cat((motion.permute(0, 2, 3, 1), features), dim=-1)
    nchw = nhwc.permute(0, 3, 1, 2)
    return nchw if runs_in_low_precision(motion) else nchw.contiguous()


class Network(nn.Module):
    """ATM-VFI: synthesises the frame halfway between two frames.

    Conventions: frames are RGB in [0, 1], [B, 3, H, W]; flows are backward (from the middle
    frame into frame 0 or 1), x then y, in pixels of the grid they live on; pyramids and
    output lists are ordered finest first.

    `global_motion` (run the 1/16 branch that pre-aligns the frames against large motion) and
    `ensemble_global_motion` (pick that branch's estimate among three input scales) are plain
    attributes that may be changed between calls. Sizes: H and W must be multiples of 8, of
    16 with global motion, of 64 with the ensemble; pad with `InputPadder` otherwise.
    """

    def __init__(self, config: NetworkConfig = BASE, global_motion: bool = True,
                 ensemble_global_motion: bool = False):
        super().__init__()
        self.config = config
        self.global_motion = global_motion
        self.ensemble_global_motion = ensemble_global_motion
        d = config.hidden_dims
        heads, ratio = config.num_heads, config.mlp_ratio
        local_dim, global_dim, last_dim = config.local_dim, config.global_dim, config.last_feat_dim
        motion_dim = config.motion_out_dim

        self.feat_extracts = FeaturePyramid(d)
        self.cross_scale_feature_fusion = CrossScaleFeatureFusion((d[1], d[2], d[3]), local_dim)
        self.feat_enhance_transformer = FeatureEnhancer(local_dim, heads, config.local_window, ratio)
        self.local_motion_atmformer = ATMFormer(local_dim, heads, config.local_window, ratio)
        self.local_motion_mlp = motion_head(2 * local_dim + MOTION_CHANNELS,
                                            config.local_head_hidden, motion_dim)
        self.last_feat_extract = nn.Sequential(conv_prelu(d[3], last_dim, 2),
                                               conv_prelu(last_dim, last_dim))
        self.global_feature_fusion = CrossScaleFeatureFusion((d[2], d[3], last_dim), global_dim)
        self.global_motion_atmformer = ATMFormer(global_dim, heads, config.global_window, ratio)
        self.global_motion_mlp = motion_head(2 * global_dim + MOTION_CHANNELS,
                                             config.global_head_width, motion_dim)
        dims = [c + motion_dim for c in config.decoder_dims]    # 1/8, 1/4, 1/2, 1
        self.upsample_pyramid = nn.ModuleList(
            decoder_stage(dims[i], dims[i + 1], activate_input=i > 0) for i in range(3))
        refine_in = dims[3] + 5 * 3    # Z0, im0, I_t_0, im1, I_t_1, I
        skips = (config.decoder_dims[2], config.decoder_dims[1])
        for name, module in refinement_modules(refine_in, config.refine_width, skips).items():
            self.add_module(name, module)
        self.apply(_init_transformer_weights)
        # The decoder and the refinement run channels-last (their 2x2 deconvolutions produce
        # it): on CPUs this avoids layout copies at full resolution. The motion branches stay
        # in the reference layout, whose rounding they amplify.
        for name in SYNTHESIS_MODULES:
            for module in getattr(self, name).modules():
                if type(module) is nn.Conv2d:
                    module.to(memory_format=torch.channels_last)

    @classmethod
    def from_variant(cls, name: str, global_motion: bool = True,
                     ensemble_global_motion: bool = False) -> "Network":
        """A network of the named variant ("base" or "lite") with untrained weights."""
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; choose one of {sorted(VARIANTS)}")
        return cls(VARIANTS[name], global_motion, ensemble_global_motion)

    @property
    def variant(self) -> str:
        return self.config.name

    # --- training helpers -------------------------------------------------------------------

    def local_motion_modules(self) -> list[nn.Module]:
        """Encoder, local ATMFormer and head, enhancer, decoder and refinement."""
        return [getattr(self, name) for name in LOCAL_MODULES]

    def global_motion_modules(self) -> list[nn.Module]:
        """The 1/16 branch: last encoder level, its fusion, global ATMFormer and head."""
        return [getattr(self, name) for name in GLOBAL_MODULES]

    def set_local_motion_trainable(self, trainable: bool) -> None:
        for module in self.local_motion_modules():
            module.requires_grad_(trainable)

    def set_global_motion_trainable(self, trainable: bool) -> None:
        for module in self.global_motion_modules():
            module.requires_grad_(trainable)

    # --- forward ----------------------------------------------------------------------------

    def forward(self, im0: Tensor, im1: Tensor) -> dict:
        """im0, im1: [B, 3, H, W] RGB in [0, 1] -> dict of outputs.

        I_t [B, 3, H, W]: the middle frame, in [0, 1].
        opt_flow_0, opt_flow_1 [B, 2, H, W]: flows t->0, t->1 in pixels (the local and decoder
            motion only: with global motion they are relative to the globally pre-warped frames).
        occ_mask1 [B, 1, H, W]: blend weight of frame 0; occ_mask2 = 1 - occ_mask1.
        I_t_0, I_t_1 [B, 3, H, W]: frames 0 and 1 warped to t.
        im_t_list, im0_warped_list, im1_warped_list: per-level blends and warped frames,
            finest first (4 levels, 5 with global motion outside the ensemble); entry 0 of
            im_t_list is blend + residual before clamping.
        """
        self._check_size(im0, im1)
        frames = torch.cat((im0, im1))                                   # [2B, 3, H, W]
        if runs_in_low_precision(frames):   # the rounding argument of head_input is moot
            frames = frames.contiguous(memory_format=torch.channels_last)
        pyramid = [frames]
        for _ in range(3):
            pyramid.append(downsample_half(pyramid[-1]))                 # 1, 1/2, 1/4, 1/8
        f1, f2, f3 = self.feat_extracts(frames)
        tokens = self.cross_scale_feature_fusion(f1, f2, f3)              # [2B, h, w, C]
        levels = []                                                       # coarse to fine

        if self.global_motion:
            if self.ensemble_global_motion:
                global_flow = self._ensemble_global_flow(frames, f2, f3)  # [B, 4, H/16, W/16]
            else:
                global_motion = self._estimate_global_motion(f2, f3)      # [B, 5, H/16, W/16]
                global_flow = global_motion[:, :4]
                levels.append(self._synthesize(downsample_half(pyramid[3]), global_motion))
            flow = upsample_flow(global_flow, 2)                          # [B, 4, h, w]
            tokens = warp_backward(tokens.permute(0, 3, 1, 2),
                                   flows_as_pair_batch(flow)).permute(0, 2, 3, 1)
            for k in (3, 2, 1, 0):
                pyramid[k] = warp_backward(pyramid[k], flows_as_pair_batch(flow))
                if k:
                    flow = upsample_flow(flow, 2)
        del f1, f2, f3

        tokens, motion = self.local_motion_atmformer(tokens)
        local_motion = self.local_motion_mlp(head_input(motion, tokens))  # [B, 5, h, w]
        enhanced = self.feat_enhance_transformer(tokens).permute(0, 3, 1, 2)
        del tokens, motion
        enhanced = warp_backward(enhanced, flows_as_pair_batch(local_motion))     # [2B, C, h, w]
        z = torch.cat((rearrange(enhanced, "(f b) c h w -> b (f c) h w", f=2), local_motion), 1)
        del enhanced
        levels.append(self._synthesize(pyramid[3], local_motion))

        skips = []
        for stage, k in zip(self.upsample_pyramid[:2], (2, 1)):
            # Each output row depends on input rows within one row: (PReLU,) deconv, 2 convs.
            z = map_row_bands(stage, [z], scale=2, halo=1)               # [B, F_k + 5, H/2^k, .]
            features, motion = split_channels(z, self._feature_and_motion_channels(z))
            skips.append(features)
            levels.append(self._synthesize(pyramid[k], motion))
        features, motion, *level = self._finest_level(z, pyramid[0], im0, im1)
        del pyramid, z
        levels.append(level)
        flow_t0, flow_t1 = motion[:, 0:2].clone(), motion[:, 2:4].clone()   # not views of z
        del motion
        warped0, warped1, blend, mask = level
        refined = blend + self._refine(features, skips)
        levels.reverse()
        return {
            "I_t": refined.clamp(0, 1),
            "im_t_list": [refined] + [level[2] for level in levels[1:]],
            "im0_warped_list": [level[0] for level in levels],
            "im1_warped_list": [level[1] for level in levels],
            "opt_flow_0": flow_t0,
            "opt_flow_1": flow_t1,
            "I_t_0": warped0,
            "I_t_1": warped1,
            "occ_mask1": mask,
            "occ_mask2": 1 - mask,
        }

    def _check_size(self, im0: Tensor, im1: Tensor) -> None:
        if im0.shape != im1.shape or im0.dim() != 4 or im0.shape[1] != 3:
            raise ValueError(f"expected two [B, 3, H, W] frames of one shape, got "
                             f"{tuple(im0.shape)} and {tuple(im1.shape)}")
        weights = next(self.parameters()).dtype
        if im0.dtype != weights or im1.dtype != weights:
            raise ValueError(f"expected frames in the weights' dtype {weights} (RGB in [0, 1]), "
                             f"got {im0.dtype} and {im1.dtype}")
        divisor = 64 if self.global_motion and self.ensemble_global_motion else (
            16 if self.global_motion else 8)
        if im0.shape[-2] % divisor or im0.shape[-1] % divisor:
            raise ValueError(f"frame size {tuple(im0.shape[-2:])} is not a multiple of {divisor}; "
                             "pad the frames with network.InputPadder")

    def _estimate_global_motion(self, f2: Tensor, f3: Tensor) -> Tensor:
        """Encoder levels 1/4 and 1/8 of both frames -> motion [B, 5, H/16, W/16]."""
        f4 = self.last_feat_extract(f3)
        tokens, motion = self.global_motion_atmformer(self.global_feature_fusion(f2, f3, f4))
        return self.global_motion_mlp(head_input(motion, tokens))

    def _ensemble_global_flow(self, frames: Tensor, f2: Tensor, f3: Tensor) -> Tensor:
        """Global flows estimated at input scales 1, 1/2 and 1/4; per sample, the one that best
        aligns the full-resolution frames (finer scale on ties). [B, 4, H/16, W/16] pixels."""
        height = frames.shape[2]
        batch = frames.shape[0] // 2
        candidates, losses = [], []
        scaled = frames
        for level in range(3):
            if level:
                scaled = downsample_half(scaled)
                _, f2, f3 = self.feat_extracts(scaled)
            flow = self._estimate_global_motion(f2, f3)[:, :4]
            full = upsample_flow(flow, height // flow.shape[2])
            warped0, warped1 = warp_backward(frames, flows_as_pair_batch(full)).chunk(2)
            losses.append((warped0 - warped1).abs().mean(dim=(1, 2, 3)))
            candidates.append(upsample_flow(flow, 2 ** level) if level else flow)
        choice = torch.stack(losses).argmin(dim=0)                       # first minimum wins
        return torch.stack(candidates)[choice, torch.arange(batch, device=frames.device)]

    def _feature_and_motion_channels(self, z: Tensor) -> tuple[int, int]:
        """Channel counts of a decoder output z [B, F_k + 5, h, w]: its features, its motion."""
        return z.shape[1] - self.config.motion_out_dim, self.config.motion_out_dim

    def _synthesize(self, frames: Tensor, motion: Tensor,
                    top: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """frames: [2B, 3, H, W] (frame 0's first); motion: [B, 5, h, W] for rows top .. top+h-1
        (all rows by default) -> (frame 0 warped, frame 1 warped, blend, blend weight of frame
        0), each [B, C, h, W]."""
        warped0, warped1 = warp_backward(frames, flows_as_pair_batch(motion), top).chunk(2)
        mask = torch.sigmoid(motion[:, 4:5])
        return warped0, warped1, mask * warped0 + (1 - mask) * warped1, mask

    def _finest_level(self, z: Tensor, frames: Tensor, im0: Tensor,
                      im1: Tensor) -> tuple[Tensor, ...]:
        """The last decoder stage, its synthesis and the refinement's input projection, in bands
        of rows, so that the stage's full-resolution output (the largest tensor of the network)
        exists for one band at a time.

        z: [B, F_1 + 5, H/2, W/2]; frames: [2B, 3, H, W] as warped by global motion;
        im0, im1: [B, 3, H, W] -> (projected features [B, r, H, W], motion [B, 5, H, W],
        frame 0 warped, frame 1 warped, blend, blend weight of frame 0).
        """
        stage = self.upsample_pyramid[2]

        def band(rows: slice, z: Tensor) -> tuple[Tensor, ...]:
            full = slice(2 * rows.start, 2 * rows.stop)
            z = stage(z)                                                 # [B, F_0 + 5, h, W]
            _, motion = split_channels(z, self._feature_and_motion_channels(z))
            level = self._synthesize(frames, motion, full.start)
            warped0, warped1, blend, _ = level
            # In z's dtype (under autocast, half precision, rather than z cast to float32) and
            # layout, so that the concatenation is the convolution's input as it is.
            parts = [t.to(z.dtype, memory_format=torch.channels_last) for t in
                     (im0[:, :, full], warped0, im1[:, :, full], warped1, blend)]
            return (self.proj(torch.cat((z, *parts), dim=1)), motion, *level)

        # Output rows depend on input rows within two: the stage's two 3x3 convolutions (one
        # half-resolution row), then the projection's (one more).
        return map_row_bands(band, [z], scale=2, halo=2, with_rows=True)

    def _refine(self, a0: Tensor, skips: list[Tensor]) -> Tensor:
        """Residual in (-1, 1) for the full-resolution blend, [B, 3, H, W].

        a0: [B, r, H, W], the projected decoder output, frames, warped frames and blend;
        skips: decoder features at 1/4 then 1/2 (motion channels removed), consumed.
        """
        a1 = map_row_bands(self.down1, [a0], scale=0.5, halo=2)       # stride 2: even rows
        # A stride-2 and a plain 3x3 convolution: three input rows each side, even for the stride.
        a2 = map_row_bands(lambda *parts: self.down2(torch.cat(parts, dim=1)),
                           [a1, skips.pop()], scale=0.5, halo=4)
        a3 = self.down3(torch.cat((a2, skips.pop()), dim=1))
        b = self.up1(a3)
        del a3
        b = self.up2(torch.cat((b, a2), dim=1))
        del a2

        def refine_band(rows: slice, b: Tensor, a1: Tensor) -> Tensor:
            b = self.up3(torch.cat((b, a1), dim=1))                       # [B, r, h, W]
            return self.refine_head(torch.cat((b, a0[:, :, 2 * rows.start:2 * rows.stop]), dim=1))

        # The 2x2 deconvolution maps one row to two; the head's two 3x3 convolutions need two
        # full-resolution rows each side, one at half resolution.
        head = map_row_bands(refine_band, [b, a1], scale=2, halo=1, with_rows=True)
        del a1
        return 2 * torch.sigmoid(head) - 1
