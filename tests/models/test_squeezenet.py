"""SqueezeNet models: the paper's numbers, torchvision parity, bypass, initialisation, config."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch
import torchvision
from torch import nn

from squeezenet.arch.config import BYPASSES
from squeezenet.errors import ConfigError
from squeezenet.models import (
    AlexNetConfig,
    Bypass,
    Fire,
    SqueezeNet,
    SqueezeNetConfig,
    create_model,
    resolve_config,
)
from squeezenet.models.summary import count_params, summarize_registered

TABLE1 = [
    (16, 64, 64),
    (16, 64, 64),
    (32, 128, 128),
    (32, 128, 128),
    (48, 192, 192),
    (48, 192, 192),
    (64, 256, 256),
    (64, 256, 256),
]


def test_default_metaparameters_reproduce_table1() -> None:
    assert SqueezeNetConfig().fire_channels() == TABLE1
    fires = [m for m in SqueezeNet().modules() if isinstance(m, Fire)]
    assert [
        (f.squeeze.out_channels, f.expand1x1.out_channels, f.expand3x3.out_channels) for f in fires
    ] == TABLE1


@pytest.mark.parametrize(
    ("name", "overrides", "size", "params", "macs_m"),
    [
        ("squeezenet1_0", {}, 224, 1_248_424, 818.9),
        ("squeezenet1_0", {"final_conv_padding": 1}, 227, 1_248_424, 861.3),
        ("squeezenet1_1", {}, 224, 1_235_496, 349.2),
        ("alexnet", {}, 224, 61_100_840, None),
    ],
)
def test_paper_parameter_and_mac_counts(
    name: str, overrides: dict[str, int], size: int, params: int, macs_m: float | None
) -> None:
    summary = summarize_registered(name, size, **overrides)
    assert summary.params == params
    assert summary.size_bytes == 4 * params
    if macs_m is not None:
        assert summary.macs / 1e6 == pytest.approx(macs_m, rel=1e-3)


def test_conv10_padding_one_gives_a_15x15_map() -> None:
    summary = summarize_registered("squeezenet1_0", 227, final_conv_padding=1)
    conv10 = next(layer for layer in summary.layers if layer.name == "conv10")
    assert conv10.out_shape == (1000, 15, 15)


@pytest.mark.parametrize(
    ("ours", "theirs"), [("squeezenet1_0", "squeezenet1_0"), ("squeezenet1_1", "squeezenet1_1")]
)
def test_torchvision_parity_both_ways(ours: str, theirs: str) -> None:
    model = create_model(ours, seed=1).eval()
    reference = getattr(torchvision.models, theirs)(weights=None).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    reference.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=0)
    # ...and back: torchvision's own initialisation loaded into ours.
    reference = getattr(torchvision.models, theirs)(weights=None).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=0)


def test_alexnet_matches_torchvision() -> None:
    model = create_model("alexnet", seed=0).eval()
    reference = torchvision.models.alexnet(weights=None).eval()
    reference.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=0)


def test_simple_bypass_adds_identity_around_odd_fires() -> None:
    model = create_model("squeezenet1_0_simple_bypass")
    fires = [m for m in model.modules() if isinstance(m, Fire)]
    assert [f.bypass for f in fires] == ["none", "simple"] * 4
    assert count_params(model) == 1_248_424
    # Same weights as the vanilla model, different function.
    vanilla = create_model("squeezenet1_0", seed=0).eval()
    model.load_state_dict(vanilla.state_dict(), strict=True)
    model.eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert not torch.allclose(model(x), vanilla(x))


def test_complex_bypass_layout_and_size() -> None:
    model = create_model("squeezenet1_0_complex_bypass")
    fires = [m for m in model.modules() if isinstance(m, Fire)]
    assert [f.bypass for f in fires] == ["complex", "simple"] * 4
    # 1x1 shortcuts (with bias) on fire2/4/6/8: 96->128, 128->256, 256->384, 384->512.
    extra = (96 * 128 + 128) + (128 * 256 + 256) + (256 * 384 + 384) + (384 * 512 + 512)
    assert extra == 341_248
    assert count_params(model) == 1_248_424 + extra == 1_589_672
    assert 4 * count_params(model) / 2**20 == pytest.approx(6.06, abs=0.01)
    # The bypass spelling changed from identity/conv to simple/complex; the keys did not.
    assert [k for k in model.state_dict() if "shortcut" in k] == [
        f"features.{i}.shortcut.{p}" for i in (3, 5, 8, 10) for p in ("weight", "bias")
    ]


def test_fire_bypass_spelling_is_the_configs() -> None:
    assert typing.get_args(Bypass) == BYPASSES == ("none", "simple", "complex")
    assert Fire(64, 16, 32, 32, bypass="simple").shortcut is None
    shortcut = Fire(96, 16, 64, 64, bypass="complex").shortcut
    assert shortcut is not None and shortcut.kernel_size == (1, 1)
    with pytest.raises(ValueError, match="simple bypass needs inplanes"):
        Fire(96, 16, 64, 64, bypass="simple")
    with pytest.raises(ValueError, match="bypass must be one of none, simple, complex"):
        Fire(64, 16, 32, 32, bypass="identity")  # type: ignore[arg-type]


def test_initialisation_is_caffe_like_and_seeded() -> None:
    a = create_model("squeezenet1_0", seed=3)
    b = create_model("squeezenet1_0", seed=3)
    c = create_model("squeezenet1_0", seed=4)
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), key
    assert not torch.equal(a.state_dict()["features.0.weight"], c.state_dict()["features.0.weight"])
    for key, value in a.state_dict().items():
        if key.endswith("bias"):
            assert torch.count_nonzero(value) == 0, key
    assert isinstance(a, SqueezeNet)
    final = a.final_conv.weight
    assert final.std().item() == pytest.approx(0.01, rel=0.05)
    conv1 = a.features[0].weight
    bound = (3.0 / conv1[0].numel()) ** 0.5  # Caffe xavier: U(-sqrt(3/fan_in), +sqrt(3/fan_in))
    assert conv1.abs().max().item() <= bound
    assert conv1.abs().max().item() > 0.95 * bound


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pct_3x3", 0.0),
        ("pct_3x3", 1.5),
        ("squeeze_ratio", 0.0),
        ("stem", "v2"),
        ("bypass", "extra"),
        ("num_classes", 0),
        ("dropout", 1.0),
        ("final_conv_padding", 2),
        ("base_e", -1),
        ("freq", 0),
        ("incr_e", -5),
        ("squeeze_ratio", 0.001),
        ("squeeze_ratio", 4.5),
        ("pct_3x3", "0.5"),
        ("dropout", "half"),
        ("in_channels", True),
    ],
)
def test_invalid_config_names_the_field(field: str, value: object) -> None:
    # ConfigError is a ValueError: a user reaches these through --set, the CLI prints one line.
    with pytest.raises(ConfigError, match=field):
        SqueezeNetConfig(**{field: value})  # type: ignore[arg-type]


def test_config_accepts_the_edges_of_its_ranges() -> None:
    assert SqueezeNetConfig(squeeze_ratio=4.0).squeeze_ratio == 4.0
    assert SqueezeNetConfig(dropout=0.0, incr_e=0).incr_e == 0


@pytest.mark.parametrize(("field", "value"), [("num_classes", 0), ("dropout", 1.0)])
def test_invalid_alexnet_config_is_a_config_error(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"AlexNetConfig.{field}"):
        AlexNetConfig(**{field: value})  # type: ignore[arg-type]


def test_metaparameter_generator_rounds_and_scales() -> None:
    config = SqueezeNetConfig(squeeze_ratio=0.75, pct_3x3=0.25, base_e=64, incr_e=32, freq=1)
    channels = config.fire_channels()
    assert channels[0] == (48, 48, 16)  # e=64: s=48, e3=16, e1=48
    assert channels[7] == (216, 216, 72)  # e=64+7*32=288
    model = SqueezeNet(config)
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, 224, 224)).shape == (1, 1000)


def test_overrides_and_unknown_options() -> None:
    config = resolve_config("squeezenet1_1", num_classes=10)
    assert dataclasses.replace(SqueezeNetConfig(stem="v1.1"), num_classes=10) == config
    with pytest.raises(ConfigError, match="no option colour"):
        create_model("squeezenet1_0", colour="red")


def test_stages_compose_to_forward() -> None:
    for name in ("squeezenet1_0", "squeezenet1_1_complex_bypass", "squeezenet_small", "alexnet"):
        model = create_model(name, seed=0).eval()
        size = 32 if name == "squeezenet_small" else 224
        x = torch.rand(1, 3, size, size)
        y = x
        with torch.no_grad():
            for _, stage in model.stages():  # type: ignore[operator]
                y = stage(y)
            torch.testing.assert_close(y, model(x), atol=1e-6, rtol=0)


def test_small_model_takes_grey_28px_images() -> None:
    model = create_model("squeezenet_small", in_channels=1, seed=0).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert isinstance(model, nn.Module)
