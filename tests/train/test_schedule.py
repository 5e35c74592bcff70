"""LR schedules and recipes."""

from __future__ import annotations

import pytest

from squeezenet.errors import ConfigError
from squeezenet.train import TrainConfig, learning_rate, recipe


def test_warmup_then_poly_matches_caffe() -> None:
    config = TrainConfig(
        lr=0.04, schedule="poly", poly_power=1.0, warmup_epochs=1, warmup_start=0.1
    )
    assert learning_rate(config, 0, 110, 10) == pytest.approx(0.004)
    assert learning_rate(config, 10, 110, 10) == pytest.approx(0.04)
    assert learning_rate(config, 60, 110, 10) == pytest.approx(0.04 * 0.5)
    assert learning_rate(config, 110, 110, 10) == pytest.approx(0.0)


def test_cosine_and_step() -> None:
    cosine = TrainConfig(lr=1.0, schedule="cosine", warmup_epochs=0)
    assert learning_rate(cosine, 50, 100, 10) == pytest.approx(0.5)
    step = TrainConfig(lr=1.0, schedule="step", step_epochs=2, step_gamma=0.1, warmup_epochs=0)
    assert learning_rate(step, 45, 100, 10) == pytest.approx(0.01)  # epoch 4: two decays


def test_caffe_recipe_is_the_papers_solver() -> None:
    caffe = recipe("caffe")
    assert (caffe.lr, caffe.momentum, caffe.weight_decay) == (0.04, 0.9, 2e-4)
    assert (caffe.batch_size, caffe.accumulate, caffe.schedule, caffe.poly_power) == (
        512,
        16,
        "poly",
        1.0,
    )


def test_invalid_fields_are_named() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=10, accumulate=3)
    with pytest.raises(ValueError, match="no field colour"):
        recipe("small", colour=1)


def test_config_errors_are_user_errors() -> None:
    for bad in ({"lr": 0.0}, {"schedule": "linear"}, {"workers": -1}, {"epochs": 0}):
        with pytest.raises(ConfigError, match="TrainConfig"):
            TrainConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown training recipe"):
        recipe("fast")


def test_resolve_bf16_follows_the_user_then_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 autocast as the user says; else the recipe's, but only on bfloat16 hardware."""
    import squeezenet.train.config as config

    small, caffe = recipe("small"), recipe("caffe")
    assert small.bf16 and not caffe.bf16
    for native in (False, True):
        monkeypatch.setattr(config, "native_bf16", lambda device, native=native: native)
        assert config.resolve_bf16(small, "cpu", None).bf16 is native
        assert config.resolve_bf16(small, "cpu", True).bf16 is True
        assert config.resolve_bf16(small, "cpu", False).bf16 is False
        assert config.resolve_bf16(caffe, "cpu", None).bf16 is False
    assert isinstance(config.native_bf16("cpu"), bool)
