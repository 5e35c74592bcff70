"""The quantizer interface: a quantizer defined in this file alone compresses a model through
the public API and the CLI, and the built-in ones are the registry's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cli_helpers import run
from squeezenet.compress import (
    QuantizeJob,
    get_quantizer,
    quantizer_names,
    quantizers,
    register_quantizer,
)
from squeezenet.compress.config import CompressConfig
from squeezenet.compress.prune import weight_layers
from squeezenet.compress.quantizers import Weighting
from squeezenet.compress.weight_sharing import LayerQuantization, QuantizeReport
from squeezenet.errors import ConfigError
from squeezenet.formats import read_sqz
from squeezenet.io import save_weights
from squeezenet.models import create_model
from squeezenet.workflows import compress_file


@dataclass(frozen=True)
class Ternary:
    """Every weight becomes -s, 0 or +s, s the layer's mean |w| over its non-zeros: plain
    weights with three values, which the export shares losslessly (a 2-entry codebook)."""

    name: str = "test-ternary"
    rate: bool = False
    without_rate: str | None = None
    grid: bool = False
    weightings: tuple[Weighting, ...] = ()

    def quantize_(self, model: nn.Module, job: QuantizeJob) -> QuantizeReport:
        rows = []
        with torch.no_grad():
            for name, module in weight_layers(model):
                weight = module.weight
                kept = weight != 0
                scale = weight[kept].abs().mean()
                shared = torch.sign(weight) * scale
                rmse = float((shared - weight)[kept].pow(2).mean().sqrt())
                weight.copy_(shared)
                rows.append(LayerQuantization(name, 1, 2, int(kept.sum()), rmse))
        return QuantizeReport(tuple(rows))


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quantizer is registered for this file's tests only."""
    monkeypatch.setattr(quantizers, "_QUANTIZERS", dict(quantizers._QUANTIZERS))
    register_quantizer(Ternary())


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    model = create_model("squeezenet_small", seed=0)
    return save_weights(model, tmp_path / "m.safetensors", model_name="squeezenet_small")


def _two_values_per_layer(path: Path) -> None:
    cm = read_sqz(path)
    assert cm.layers
    for layer in cm.layers:
        assert layer.codebook.size == 2  # -s and +s; the zeros are not stored
        np.testing.assert_allclose(layer.codebook[0], -layer.codebook[1], rtol=1e-6)


def test_a_new_quantizer_compresses_through_the_public_api(weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.sqz"
    result = compress_file(weights, out, CompressConfig(quantizer="test-ternary"))
    assert [row.clusters for row in result.report.layers] == [2] * len(result.report.layers)
    _two_values_per_layer(out)


def test_a_new_quantizer_is_a_cli_choice(
    weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.sqz"
    code, stdout, _ = run(
        capsys, "compress", weights, "-o", out, "--quantizer", "test-ternary", "--json"
    )
    assert code == 0, stdout
    assert json.loads(stdout)["file_bytes"] == out.stat().st_size
    _two_values_per_layer(out)


def test_the_registry_holds_the_built_in_quantizers() -> None:
    assert quantizer_names()[:3] == ("kmeans", "ecsq", "trellis")
    assert get_quantizer("trellis").grid and get_quantizer("ecsq").rate
    assert CompressConfig().quantizer_in_use().name == "kmeans"  # ecsq without a rate
    assert CompressConfig(rate_lambda=1e-6).quantizer_in_use().name == "ecsq"
    with pytest.raises(ConfigError, match="unknown quantizer 'zip'; known: kmeans, ecsq"):
        CompressConfig(quantizer="zip")
    with pytest.raises(ConfigError, match="--quantizer kmeans takes no rate"):
        CompressConfig(quantizer="kmeans", target_bytes=1000)
    with pytest.raises(ConfigError, match="--weighting activation needs --quantizer trellis"):
        CompressConfig(rate_lambda=1e-6, weighting="activation")


def test_the_cli_help_names_the_built_in_quantizers() -> None:
    from squeezenet.cli.options import QUANTIZER_NAMES

    assert QUANTIZER_NAMES.split(" | ") == list(quantizers.BUILT_IN)
    assert set(quantizers.BUILT_IN) <= set(quantizer_names())
