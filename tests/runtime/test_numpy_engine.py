"""The numpy engine and the torch module compute the same network, for every registered
SqueezeNet and every option the layer list has (stems, padding, bypasses, batch norm, grey)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from squeezenet.arch.config import SqueezeNetConfig
from squeezenet.arch.layers import MaxPool, layer_list
from squeezenet.arch.registry import get_spec, list_models, resolve_config
from squeezenet.errors import InputError
from squeezenet.models import create_model
from squeezenet.models.summary import summarize
from squeezenet.runtime.bench import layer_macs
from squeezenet.runtime.model_file import state_keys
from squeezenet.runtime.numpy_engine import NumpyNetwork, _max_pool

SQUEEZENETS = [n for n in list_models() if isinstance(get_spec(n).config, SqueezeNetConfig)]
OPTIONS = [
    {},
    {"final_conv_padding": 1},
    {"batch_norm": True, "bypass": "complex"},
    {"in_channels": 1, "batch_norm": True},
]


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial batch-norm statistics and biases, so folding them is tested."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.uniform_(-0.2, 0.2, generator=generator)
        if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
            module.bias.data.uniform_(-0.1, 0.1, generator=generator)
    return model.eval()


@pytest.mark.parametrize("name", SQUEEZENETS)
@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: ",".join(map(str, o.items())) or "default"
)
def test_the_numpy_engine_computes_the_torch_module(name: str, options: dict[str, object]) -> None:
    model = _randomised(create_model(name, seed=0, **options))
    config = resolve_config(name, **options)
    size = 64 if get_spec(name).input_size > 64 else get_spec(name).input_size + 3
    x = torch.randn(2, config.in_channels, size, size, generator=torch.Generator().manual_seed(0))  # type: ignore[union-attr]
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    assert set(weights) == set(state_keys(config))
    with torch.no_grad():
        reference = model(x).numpy()
    logits = NumpyNetwork(layer_list(config), weights)(x.numpy())
    assert logits.shape == reference.shape and logits.dtype == np.float32
    scale = float(reference.max() - reference.min()) or 1.0
    assert np.abs(logits - reference).max() / scale < 1e-4
    shape = (config.in_channels, size, size)  # type: ignore[union-attr]
    assert layer_macs(layer_list(config), shape) == summarize(model, shape).macs


@pytest.mark.parametrize("size", [5, 6, 7, 8, 13, 14])
def test_ceil_mode_max_pool_matches_torch(size: int) -> None:
    x = torch.randn(2, 3, size, size + 1, generator=torch.Generator().manual_seed(size))
    expected = torch.nn.functional.max_pool2d(x, 3, 2, ceil_mode=True).numpy()
    got = _max_pool(np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1)), MaxPool())
    np.testing.assert_array_equal(got.transpose(0, 3, 1, 2), expected)


def test_missing_or_misshapen_weights_are_named() -> None:
    config = resolve_config("squeezenet1_1")
    weights = {k: v.numpy() for k, v in create_model("squeezenet1_1", seed=0).state_dict().items()}
    with pytest.raises(InputError, match=r"features\.0\.weight"):
        NumpyNetwork(
            layer_list(config), {k: v for k, v in weights.items() if k != "features.0.weight"}
        )
    bad = dict(weights, **{"classifier.1.bias": np.zeros(3, np.float32)})
    with pytest.raises(InputError, match=r"classifier.1.bias has shape \(3,\)"):
        NumpyNetwork(layer_list(config), bad)
    network = NumpyNetwork(layer_list(config), weights)
    with pytest.raises(ValueError, match=r"expected \(N, 3, H, W\)"):
        network(np.zeros((1, 1, 64, 64), np.float32))


def test_a_config_dict_from_a_file_resolves_like_the_dataclass() -> None:
    config = resolve_config("squeezenet_small", **{"in_channels": 1})
    assert dataclasses.asdict(config)["in_channels"] == 1  # type: ignore[call-overload]
