"""torch.compile sees the whole forward as one graph (traced only: compiling takes minutes)."""
import pytest
import torch
import torch._dynamo

from network import Network


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_forward_traces_as_one_graph(precision):
    """A graph break splits the compiled forward, and code after a break that Dynamo cannot
    resume from runs uncompiled (as `del` of a closure cell did)."""
    torch._dynamo.reset()
    model = Network.from_variant("lite").eval()
    frames = torch.rand(2, 1, 3, 64, 64)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16,
                                                enabled=precision == "bf16"):
        explanation = torch._dynamo.explain(model)(frames[0], frames[1])
    assert explanation.graph_break_count == 0, [b.reason for b in explanation.break_reasons]
    assert explanation.graph_count == 1
