"""The instance norm that keeps NHWC: the built-in's numbers, the input's layout, the built-in in exports."""

from __future__ import annotations

import io

import onnx
import pytest
import torch
from torch import nn

from pixforge.nn.norms import InstanceNorm2d, norm_layer


@pytest.mark.parametrize("batch", [1, 2])
def test_matches_the_builtin_forward_and_backward_in_both_layouts(batch):
    torch.manual_seed(0)
    x = torch.randn(batch, 8, 9, 7, dtype=torch.float64) * 3 + 1
    grad = torch.randn_like(x)
    ref = x.clone().requires_grad_()
    expected = nn.InstanceNorm2d(8)(ref)
    expected.backward(grad)
    for layout in (torch.contiguous_format, torch.channels_last):
        ours = x.clone().contiguous(memory_format=layout).requires_grad_()
        y = InstanceNorm2d(8)(ours)
        y.backward(grad)
        torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(ours.grad, ref.grad, rtol=0, atol=1e-12)
        if batch == 1:  # the batch-of-one path keeps the layout (the built-in returns NCHW)
            assert y.is_contiguous(memory_format=layout)


def test_the_norm_registry_builds_it_with_an_empty_state_dict():
    layer = norm_layer("instance", 16)
    assert isinstance(layer, InstanceNorm2d) and not layer.state_dict()


def test_onnx_export_records_instance_normalization_for_any_batch():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), InstanceNorm2d(4))
    buf = io.BytesIO()
    torch.onnx.export(net, torch.randn(1, 3, 8, 8), buf, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    ops = {node.op_type for node in onnx.load_from_string(buf.getvalue()).graph.node}
    assert "InstanceNormalization" in ops and "BatchNormalization" not in ops
