"""Published facts: every registered model's record agrees with the model and with its sources."""

from __future__ import annotations

import pytest
import torch
import torchvision

from squeezenet.arch.facts import FACTS, PAPER_TABLE2, PAPER_TABLE3, TORCHVISION
from squeezenet.arch.preprocess import PRESETS
from squeezenet.errors import ConfigError
from squeezenet.models import Accuracy, ModelFacts, create_model, get_spec, list_models
from squeezenet.models.summary import count_params, summarize, summarize_registered

# The numbers as published, written out once more so that a change to facts.py shows here.
PUBLISHED: dict[str, list[tuple[float, float, str]]] = {
    "squeezenet1_0": [
        (57.5, 80.3, PAPER_TABLE2),
        (58.092, 80.420, TORCHVISION.format("SqueezeNet1_0")),
    ],
    "squeezenet1_1": [(58.178, 80.624, TORCHVISION.format("SqueezeNet1_1"))],
    "squeezenet1_0_simple_bypass": [(60.4, 82.5, PAPER_TABLE3)],
    "squeezenet1_0_complex_bypass": [(58.8, 82.0, PAPER_TABLE3)],
    "squeezenet1_1_simple_bypass": [],
    "squeezenet1_1_complex_bypass": [],
    "squeezenet_small": [],
    "alexnet": [(57.2, 80.3, PAPER_TABLE2), (56.522, 79.066, TORCHVISION.format("AlexNet"))],
}
# Measured: the smallest square input each model's forward accepts.
MIN_INPUT_SIZES = {
    "squeezenet1_0": 21,
    "squeezenet1_1": 17,
    "squeezenet1_0_simple_bypass": 21,
    "squeezenet1_0_complex_bypass": 21,
    "squeezenet1_1_simple_bypass": 17,
    "squeezenet1_1_complex_bypass": 17,
    "squeezenet_small": 8,
    "alexnet": 63,
}
TORCHVISION_WEIGHTS = {
    "squeezenet1_0": "SqueezeNet1_0_Weights",
    "squeezenet1_1": "SqueezeNet1_1_Weights",
    "alexnet": "AlexNet_Weights",
}


def test_every_registered_model_has_one_record() -> None:
    assert sorted(FACTS) == list_models()
    for name in list_models():
        assert get_spec(name).facts is FACTS[name]
        assert isinstance(FACTS[name], ModelFacts)


@pytest.mark.parametrize("name", sorted(FACTS))
def test_params_and_macs_match_the_model(name: str) -> None:
    facts = get_spec(name).facts
    assert count_params(create_model(name, seed=0)) == facts.params
    summary = summarize_registered(name)
    size = facts.input_size
    assert summary.input_shape == (get_spec(name).config.in_channels, size, size)
    assert summary.params == facts.params
    assert summary.macs == facts.macs
    assert facts.size_bytes == summary.size_bytes == 4 * facts.params


def test_pinned_counts() -> None:
    assert FACTS["squeezenet1_0"].params == 1_248_424
    assert round(FACTS["squeezenet1_0"].macs / 1e6, 1) == 818.9  # as published, to 0.1 M
    assert FACTS["squeezenet1_1"].params == 1_235_496
    assert round(FACTS["squeezenet1_1"].macs / 1e6, 1) == 349.2
    assert FACTS["squeezenet1_0_complex_bypass"].params == 1_589_672
    assert FACTS["squeezenet1_1_complex_bypass"].params == 1_572_648
    assert FACTS["alexnet"].params == 61_100_840


@pytest.mark.parametrize("name", sorted(FACTS))
def test_min_input_size_is_the_smallest_that_runs(name: str) -> None:
    facts, spec = FACTS[name], get_spec(name)
    assert facts.min_input_size == MIN_INPUT_SIZES[name]
    model = create_model(name, seed=0).eval()
    channels, smallest = spec.config.in_channels, facts.min_input_size
    with torch.no_grad():
        y = model(torch.rand(1, channels, smallest, smallest))
        assert y.shape == (1, spec.config.num_classes)
        assert torch.isfinite(y).all()
        # One pixel less: a pooling layer's output would be empty, and torch refuses it.
        with pytest.raises(RuntimeError, match="Output size is too small"):
            model(torch.rand(1, channels, smallest - 1, smallest - 1))
    with pytest.raises(ConfigError, match="too small"):
        summarize(model, (channels, smallest - 1, smallest - 1), name=name)


@pytest.mark.parametrize("name", sorted(FACTS))
def test_preprocess_names_a_preset_that_fits(name: str) -> None:
    facts, config = FACTS[name], get_spec(name).config
    preset = PRESETS[facts.preprocess]
    assert preset.crop == facts.input_size
    assert preset.channels == config.in_channels


@pytest.mark.parametrize("name", sorted(FACTS))
def test_published_accuracy_and_sources(name: str) -> None:
    assert FACTS[name].accuracy == tuple(Accuracy(*row) for row in PUBLISHED[name])
    for accuracy in FACTS[name].accuracy:
        assert 0 < accuracy.top1 < accuracy.top5 < 100
        assert accuracy.source


@pytest.mark.parametrize("name", sorted(TORCHVISION_WEIGHTS))
def test_torchvision_facts_match_torchvision_meta(name: str) -> None:
    weights_enum = TORCHVISION_WEIGHTS[name]
    meta = getattr(torchvision.models, weights_enum).IMAGENET1K_V1.meta
    facts = FACTS[name]
    assert meta["num_params"] == facts.params
    assert meta["min_size"] == (facts.min_input_size, facts.min_input_size)
    assert meta["_ops"] == round(facts.macs / 1e9, 3)  # torchvision's "GFLOPS" are GMACs
    published = {a.source: a for a in facts.accuracy}
    ours = published[TORCHVISION.format(weights_enum.removesuffix("_Weights"))]
    assert meta["_metrics"]["ImageNet-1K"] == {"acc@1": ours.top1, "acc@5": ours.top5}
    assert TORCHVISION.format(weights_enum.removesuffix("_Weights")) in facts.source


def test_a_record_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="min_input_size"):
        ModelFacts(params=1, macs=1, input_size=32, min_input_size=33, preprocess="cifar10")
    with pytest.raises(ValueError, match="positive params"):
        ModelFacts(params=0, macs=1, input_size=32, min_input_size=8, preprocess="cifar10")
