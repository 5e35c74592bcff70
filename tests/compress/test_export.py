"""Tests for squeezenet.compress.plain_data: module <-> CompressedModel, exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from squeezenet.compress import (
    CompressedModel,
    PrunePolicy,
    from_compressed,
    prune_,
    quantize_,
    remove_pruning_,
    remove_quantization_,
    to_compressed,
)
from squeezenet.models import create_model


def _effective_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict a plain model would have: parametrized weights evaluated."""
    state = {k: v for k, v in model.state_dict().items() if ".parametrizations." not in k}
    for name, module in model.named_modules():
        if hasattr(module, "parametrizations"):
            state[f"{name}.weight"] = module.weight.detach()
    return state


def _assert_same(model: nn.Module, rebuilt: nn.Module) -> None:
    expected = _effective_state(model)
    got = rebuilt.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype, key
        assert torch.equal(got[key], value), key


def _compressed_small(**overrides: object) -> tuple[nn.Module, CompressedModel]:
    model = create_model("squeezenet_small", seed=0, **overrides)
    prune_(model, PrunePolicy.paper())
    quantize_(model, {"*.expand3x3": 5, "*": 8})
    with torch.no_grad():  # non-trivial batch-norm statistics travel in `dense`
        model(torch.randn(2, 3, 32, 32))
    return model, to_compressed(model, model_name="squeezenet_small")


def test_round_trip_is_exact() -> None:
    model, cm = _compressed_small()
    _assert_same(model, from_compressed(cm))
    assert cm.config == {}


def test_layers_are_well_formed() -> None:
    model, cm = _compressed_small()
    conv_names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert [layer.name for layer in cm.layers] == conv_names
    for layer in cm.layers:
        assert layer.codebook.dtype == np.float32
        assert layer.codebook.size <= 2**layer.bits
        assert layer.positions.dtype == np.int64 and np.all(np.diff(layer.positions) > 0)
        assert layer.codes.dtype == np.uint16 and layer.codes.size == layer.positions.size
        assert int(layer.codes.max()) < layer.codebook.size
        assert layer.bias is not None and layer.bias.dtype == np.float32
    rows = {layer.name: layer for layer in cm.layers}
    conv10 = rows["classifier.1"]
    assert conv10.bits == 8 and conv10.density == pytest.approx(0.2, abs=1e-3)
    assert all(r.bits == 5 for n, r in rows.items() if n.endswith("expand3x3"))


def test_config_overrides_and_metadata() -> None:
    model = create_model("squeezenet1_0", seed=0, final_conv_padding=1, num_classes=10)
    quantize_(model, 4)
    cm = to_compressed(
        model,
        model_name="squeezenet1_0",
        preprocess={"name": "caffe"},
        class_names=[str(i) for i in range(10)],
    )
    assert cm.config == {"final_conv_padding": 1, "num_classes": 10}
    json.dumps(cm.config)
    assert cm.preprocess == {"name": "caffe"} and cm.class_names == [str(i) for i in range(10)]
    _assert_same(model, from_compressed(cm))


def test_baked_in_quantized_layers_export_losslessly() -> None:
    model = create_model("squeezenet_small", seed=1)
    prune_(model, PrunePolicy.uniform(0.5))
    quantize_(model, 6)
    remove_quantization_(model)
    remove_pruning_(model)  # plain parameters with at most 64 distinct non-zero values
    cm = to_compressed(model, model_name="squeezenet_small")
    assert all(layer.codebook.size <= 64 and layer.bits <= 6 for layer in cm.layers)
    _assert_same(model, from_compressed(cm))


def test_pruned_only_small_layers_export_losslessly() -> None:
    model = create_model("squeezenet_small", seed=0, num_classes=4)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():  # few distinct values: export shares them exactly
                module.weight.copy_(torch.randint(-8, 8, module.weight.shape) / 16)
    prune_(model, PrunePolicy.uniform(0.3))
    cm = to_compressed(model, model_name="squeezenet_small")
    assert cm.config == {"num_classes": 4}
    _assert_same(model, from_compressed(cm))


def test_float_layers_must_be_quantized_first() -> None:
    model = create_model("squeezenet_small", seed=0)
    with pytest.raises(ValueError, match="quantize"):
        to_compressed(model, model_name="squeezenet_small")


def test_wrong_model_name_is_an_error() -> None:
    model, cm = _compressed_small()
    with pytest.raises(ValueError, match="model_name"):
        to_compressed(model, model_name="alexnet")
    cm.layers.pop()
    with pytest.raises(ValueError, match="does not fit"):
        from_compressed(cm)
