"""Registry: names, duplicates, and every registered model runs in both memory layouts."""

from __future__ import annotations

import pytest
import torch

from squeezenet.arch.registry import UnknownModelError, register_model
from squeezenet.errors import ConfigError
from squeezenet.models import ModelSpec, SqueezeNetConfig, create_model, get_spec, list_models
from squeezenet.models.summary import count_params, summarize_registered

REQUIRED = {
    "squeezenet1_0",
    "squeezenet1_1",
    "squeezenet1_0_simple_bypass",
    "squeezenet1_0_complex_bypass",
    "squeezenet1_1_simple_bypass",
    "squeezenet1_1_complex_bypass",
    "squeezenet_small",
    "alexnet",
}


def test_required_models_are_registered() -> None:
    assert set(list_models()) >= REQUIRED


def test_registering_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model(
            ModelSpec("squeezenet1_0", SqueezeNetConfig(), "again", get_spec("squeezenet1_0").facts)
        )


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(UnknownModelError, match=r"squeezenet1_0.*squeezenet1_1"):
        get_spec("no_such_model")
    # A user error: the CLI maps ConfigError (a ValueError) to one line and exit 2.
    assert issubclass(UnknownModelError, ConfigError)
    assert issubclass(UnknownModelError, ValueError)
    with pytest.raises(UnknownModelError):
        create_model("no_such_model")


def test_input_size_is_the_facts() -> None:
    for name in list_models():
        spec = get_spec(name)
        assert spec.input_size == spec.facts.input_size
    assert get_spec("squeezenet1_0").input_size == 224
    assert get_spec("squeezenet_small").input_size == 32


@pytest.mark.parametrize("name", sorted(REQUIRED))
@pytest.mark.parametrize("channels_last", [False, True])
def test_every_model_runs_forward(name: str, channels_last: bool) -> None:
    spec = get_spec(name)
    model = create_model(name, seed=0).eval()
    x = torch.rand(2, spec.config.in_channels, spec.input_size, spec.input_size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, spec.config.num_classes)
    assert torch.isfinite(y).all()
    assert count_params(model) == summarize_registered(name).params
