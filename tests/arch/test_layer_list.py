"""The torch-free layer list of every registered SqueezeNet names and shapes exactly the
parameters and batch-norm buffers of the nn.Module that squeezenet.models builds."""

from __future__ import annotations

import pytest

from squeezenet.arch import get_spec, list_models
from squeezenet.arch.config import AlexNetConfig
from squeezenet.arch.layers import Conv, Fire, GlobalAvgPool, MaxPool, layer_list
from squeezenet.errors import ConfigError
from squeezenet.models import create_model

SQUEEZENETS = [n for n in list_models() if n != "alexnet"]


def _convs(layers: tuple[object, ...]) -> list[Conv]:
    out: list[Conv] = []
    for layer in layers:
        if isinstance(layer, Conv):
            out.append(layer)
        elif isinstance(layer, Fire):
            out += [layer.squeeze, layer.expand1x1, layer.expand3x3]
            out += [layer.shortcut] if layer.shortcut is not None else []
    return out


def _expected_keys(conv: Conv) -> dict[str, tuple[int, ...]]:
    keys = {
        f"{conv.name}.weight": (conv.out_channels, conv.in_channels, conv.kernel, conv.kernel),
        f"{conv.name}.bias": (conv.out_channels,),
    }
    if conv.batch_norm is not None:
        for part in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{conv.batch_norm}.{part}"] = (conv.out_channels,)
        keys[f"{conv.batch_norm}.num_batches_tracked"] = ()
    return keys


@pytest.mark.parametrize("name", SQUEEZENETS)
@pytest.mark.parametrize("overrides", [{}, {"in_channels": 1, "final_conv_padding": 1}])
def test_the_layer_list_is_the_models_state_dict(name: str, overrides: dict[str, int]) -> None:
    config = get_spec(name).config
    model = create_model(name, **overrides)
    layers = layer_list(type(config)(**{**config.__dict__, **overrides}))
    expected: dict[str, tuple[int, ...]] = {}
    for conv in _convs(layers):
        expected |= _expected_keys(conv)
    state = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert state == expected
    pools = [layer for layer in layers if isinstance(layer, MaxPool)]
    assert len(pools) == len([m for m in model.features if type(m).__name__ == "MaxPool2d"])
    assert isinstance(layers[-1], GlobalAvgPool)
    assert layers[-2] == Conv(
        "classifier.1",
        model.final_conv.in_channels,
        model.final_conv.out_channels,
        1,
        padding=overrides.get("final_conv_padding", 0),
    )


def test_bypasses_follow_the_model() -> None:
    model = create_model("squeezenet1_0_complex_bypass")
    fires = [layer for layer in layer_list(model.config) if isinstance(layer, Fire)]
    modules = [m for m in model.features if type(m).__name__ == "Fire"]
    assert [f.bypass for f in fires] == [m.bypass for m in modules]
    assert [f.out_channels for f in fires] == [m.out_channels for m in modules]
    assert {f.bypass for f in fires} == {"simple", "complex"}


def test_alexnet_has_no_layer_list() -> None:
    with pytest.raises(ConfigError, match="only SqueezeNets"):
        layer_list(AlexNetConfig())
