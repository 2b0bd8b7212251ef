"""`Linear`: nn.Linear whose float32 inference on x86 CPUs runs on oneDNN.

PyTorch computes float32 linear layers with the BLAS it links (MKL on x86 wheels), whose
kernels on AMD CPUs are far from the hardware: 96 GFLOP/s per Zen 5 core against 221 through
oneDNN, the library PyTorch already uses for convolutions and bf16 products. The transformer
layers of the float32 network therefore run through oneDNN when no gradient is needed (its
kernel has none). Float32 conformance is kept (worst case 3.7e-5 against 3.3e-5 with MKL).
"""
import functools
import platform

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@functools.cache
def _onednn_available() -> bool:
    machine = platform.machine().lower()
    return torch.backends.mkldnn.is_available() and machine in ("x86_64", "amd64")


def use_onednn(x: Tensor, weight: Tensor) -> bool:
    """True where `Linear` takes oneDNN: float32 CPU inputs, no autocast, no gradient, not
    inside torch.compile (TorchInductor picks its own kernels)."""
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and not torch.compiler.is_compiling()
            and not torch.is_autocast_enabled("cpu")
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
            and _onednn_available())


class Linear(nn.Linear):
    """nn.Linear (same parameters, same result to float32 rounding). x: [..., in] -> [..., out]."""

    def forward(self, x: Tensor) -> Tensor:
        if use_onednn(x, self.weight):
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)
