"""How a network trained from scratch starts (train.py --scratch_init).

`init_for_motion` replaces the network's own initialisation so that it learns motion within
hundreds of steps rather than after a long flat start (README, Training: "Known-motion data").
Architecture, losses and optimizer are untouched; weights loaded afterwards replace all of it.
"""
import torch
from torch import nn

from .model import MOTION_CHANNELS, SYNTHESIS_MODULES, Network

ATTENTION_GAIN = 2.0    # scale of the q and k projections of a fresh ATMFormer


def init_for_motion(model: Network, attention: bool = False) -> None:
    """Re-initialise a fresh network so that it learns motion within hundreds of steps rather
    than after a long flat start.

    With the network's own initialisation (PyTorch's default for the CNN convolutions, gain
    ~0.58 per layer plus biases), the encoder's 1/8 tokens are nearly the same everywhere (cosine
    similarity ~0.997 between neighbouring cells), so nothing correlates with motion, and the
    decoder hands each level's motion through random layers, so the full-resolution losses hardly
    reach the 1/8 motion head. Here:

    - CNN convolutions (encoder, motion heads, decoder, refinement): He-normal for PReLU's
      slope 0.25 (PyTorch's fan-in; for the 2x2 transposed ones its fan-out), zero biases. The
      transformers and token fusions keep their own initialisation.
    - The last convolution of both motion heads and of the refinement: zero, so flows, the
      occlusion logit and the residual start at 0 (the prediction is the frames' average).
    - Each decoder stage passes the previous level's motion channels through (flows x 2 for
      the doubled grid, the occlusion logit x 1) and adds a learnt correction, initially 0.

    Even so, the attention's motion reaches the flows only through weights near 0 (the
    head-fusing MLP, std 0.02 per layer, and the head's zero last convolution): no loss moves
    the attention at first, and AdamW grows a weight by at most ~lr per step. With `attention`,
    the ATMFormers attend by token similarity (`_attend_by_similarity`) and the motion heads
    start from their motion (`_motion_from_attention`) instead of 0: the flows start as a crude
    estimate and are learnt from the first steps.
    """
    prelu_slope = 0.25                                                    # PReLU's initial slope
    with torch.no_grad():
        for name in ("feat_extracts", "last_feat_extract", "local_motion_mlp",
                     "global_motion_mlp", *SYNTHESIS_MODULES):
            for module in getattr(model, name).modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.groups == 1:
                    mode = "fan_out" if isinstance(module, nn.ConvTranspose2d) else "fan_in"
                    nn.init.kaiming_normal_(module.weight, a=prelu_slope, mode=mode,
                                            nonlinearity="leaky_relu")
                    nn.init.zeros_(module.bias)
        heads = (model.local_motion_mlp, model.global_motion_mlp)
        for last in (model.refine_head[-1][0], *(head[-1] for head in heads)):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        if attention:
            for atmformer in (model.local_motion_atmformer, model.global_motion_atmformer):
                for block in atmformer:
                    _attend_by_similarity(block.attn)
            for head in heads:
                _motion_from_attention(head)
        _pass_motion_up(model)


def _attend_by_similarity(attention: nn.Module) -> None:
    """An `AttentionToMotion` whose logits are ATTENTION_GAIN^2 x the similarity of the
    layer-normalised tokens in each head's subspace, and whose head-fusing MLP returns the mean
    of the heads' motions.

    q and the key half of kv are one random orthogonal matrix times ATTENTION_GAIN (entries
    ~0.13 rather than 0.02): a cell's own match scores highest (~21 per head), and neighbours
    whose tokens have cosine similarity 0.92 score ~1.7 lower. The MLP (heads -> heads/2 ->
    GELU -> 1) computes GELU(m) - GELU(-m) = m for m the mean motion; its other hidden units
    start at 0.
    """
    dim = attention.q.in_features
    nn.init.orthogonal_(attention.q.weight, gain=ATTENTION_GAIN)
    attention.kv.weight[:dim] = attention.q.weight
    first, _, second = attention.mlp
    for layer in (first, second):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    first.weight[0] = 1 / first.in_features
    first.weight[1] = -1 / first.in_features
    second.weight[0, :2] = torch.tensor([1.0, -1.0])


def _motion_from_attention(head: nn.Sequential) -> None:
    """A motion head (two 3x3 conv units, then a 1x1 conv) whose flows start as
    flow t->1 = sum over the two ATM blocks of (m_0 - m_1) / 8, flow t->0 = -flow t->1, where
    m_f [2 channels, cells] is the attention motion of frame f's cells towards the other frame.

    For a motion s from frame 0 to frame 1, m_0 ~ s and m_1 ~ -s, so flow t->1 ~ s / 2 (flows
    and motions both in cells of the head's level). Near-uniform attention gives both frames
    the same motion towards the window's centre, which cancels. The 8 motion channels (the first
    of the head's input) pass both conv units unchanged (centre tap 1, PReLU slope 1); the
    rest of the head is as initialised, with the last convolution's other weights 0 (as
    `init_for_motion` left them).
    """
    (conv1, act1), (conv2, act2), last = head
    for conv, act in ((conv1, act1), (conv2, act2)):
        conv.weight[:MOTION_CHANNELS] = 0
        conv.bias[:MOTION_CHANNELS] = 0
        for k in range(MOTION_CHANNELS):
            conv.weight[k, k, 1, 1] = 1
        act.weight[:MOTION_CHANNELS] = 1
    for block in (0, 4):                          # channels: frame 0 x, y, frame 1 x, y
        for axis in (0, 1):
            frame0, frame1 = block + axis, block + 2 + axis
            last.weight[2 + axis, frame0] = last.weight[axis, frame1] = 1 / 8
            last.weight[2 + axis, frame1] = last.weight[axis, frame0] = -1 / 8


def _pass_motion_up(model: Network) -> None:
    """Each decoder stage's motion channels: the previous level's (flows x 2, the occlusion
    logit x 1) plus a learnt correction, initially 0."""
    motion = model.config.motion_out_dim
    factors = [2.0] * (motion - 1) + [1.0]                          # flows, then the logit
    for stage in model.upsample_pyramid:
        layers = list(stage)
        if isinstance(layers[0], nn.PReLU):                          # input activation
            layers.pop(0).weight[-motion:] = 1
        (deconv, act1), (conv, act2), last = layers
        for layer in (deconv, conv, last):
            out_axis = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
            layer.weight.narrow(out_axis, layer.weight.shape[out_axis] - motion, motion).zero_()
            layer.bias[-motion:] = 0
        for k, factor in enumerate(factors):
            channel = k - motion
            deconv.weight[channel, channel] = factor                # all four 2x2 taps
            conv.weight[channel, channel, 1, 1] = 1
            last.weight[channel, channel, 1, 1] = 1
        act1.weight[-motion:] = 1
        act2.weight[-motion:] = 1
