"""ECSQ at a byte target: the bisection meets it within 1 %, never above it, and never by
wrecking the model."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
from torch import nn

from squeezenet.compress.config import CompressConfig
from squeezenet.compress.rate import TOLERANCE, TargetWrecksError, _Prober, _search
from squeezenet.compress.weight_sharing import QuantizeReport
from squeezenet.errors import ConfigError
from squeezenet.io.weights import LoadedModel
from squeezenet.models import create_model
from squeezenet.workflows.compress_file import compress_model

TINY = {"base_e": 16, "incr_e": 16}


def _loaded() -> LoadedModel:
    # a squeezenet_small of ~20k parameters: each probe of a byte target quantizes and encodes
    # the whole model, and the search, the sizes and the wrecking are the same at this width
    config = {"num_classes": 10, **TINY}
    model = create_model("squeezenet_small", seed=0, **config)
    return LoadedModel(model, "squeezenet_small", config, None, None, None)  # type: ignore[arg-type]


def test_lambda_gives_a_smaller_file_than_kmeans() -> None:
    kmeans = compress_model(_loaded(), CompressConfig(bits=6))
    ecsq = compress_model(_loaded(), CompressConfig(bits=6, rate_lambda=1e-4))
    assert ecsq.report.rate is not None and ecsq.report.rate["rate_lambda"] == 1e-4
    assert len(ecsq.data) < len(kmeans.data)


# Below about 0.56 of the lossless size, ECSQ with equal layer costs wrecks this model (its
# conv10, initialised 100x smaller than the other layers, goes to noise first).
@pytest.mark.parametrize("fraction", [0.8, 0.6])
def test_bisection_meets_a_byte_target(fraction: float) -> None:
    lossless = len(compress_model(_loaded(), CompressConfig(bits=8)).data)
    target = int(lossless * fraction)
    result = compress_model(_loaded(), CompressConfig(bits=8, target_bytes=target))
    assert (1 - TOLERANCE) * target <= len(result.data) <= target
    assert result.report.rate is not None
    lam = result.report.rate["rate_lambda"]
    again = compress_model(_loaded(), CompressConfig(bits=8, rate_lambda=lam))
    assert again.data == result.data  # the chosen lambda reproduces the file


def test_config_rejects_both_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="not both"):
        CompressConfig(rate_lambda=1e-4, target_bytes=10_000)
    with pytest.raises(ConfigError, match="rate_lambda"):
        CompressConfig(rate_lambda=-1.0)
    with pytest.raises(ConfigError, match="target_bytes"):
        CompressConfig(target_bytes=10)


def test_unreachable_target_is_a_user_error() -> None:
    with pytest.raises(ConfigError, match="--target-bytes"):
        compress_model(_loaded(), CompressConfig(bits=8, target_bytes=200))


def _fake_search(
    target: int,
    wrecks_above: float,
    size: Callable[[float], int] = lambda lam: int(1e6 / (1 + 1e4 * lam)),
) -> float:
    """_search over a stand-in quantizer: the file shrinks as lambda grows, and every lambda
    above ``wrecks_above`` zeroes the layer."""
    model = nn.Sequential(nn.Linear(4, 4))

    def quantize(trial: nn.Module, lam: float) -> QuantizeReport:
        trial.lam = lam  # type: ignore[assignment]  # what size_of reads
        if lam > wrecks_above:
            with torch.no_grad():
                trial[0].weight.zero_()  # type: ignore[operator]
        return QuantizeReport(())

    prober = _Prober(model, lambda trial: size(float(trial.lam)), quantize, [], None)
    return _search(prober, target, " or use --codec auto")


def test_a_target_within_reach_is_met_whole() -> None:
    lam = _fake_search(500_000, wrecks_above=1e-3)  # 500,000 bytes at lambda 1e-4
    assert 1e-4 <= lam <= 1e-3 and int(1e6 / (1 + 1e4 * lam)) >= (1 - TOLERANCE) * 500_000


def test_a_target_met_only_by_wrecking_names_the_smallest_whole_file() -> None:
    with pytest.raises(TargetWrecksError) as info:
        _fake_search(50_000, wrecks_above=1e-3)  # 1e-3 gives 90,909 bytes
    message = str(info.value)
    assert message.startswith("--target-bytes 50,000 can only be met by wrecking the model (at ")
    assert "layer 0 keeps 0 % of its non-zero weights" in message
    assert re.search(r"is (9\d,\d{3}) bytes: raise --target-bytes or use --codec auto$", message)
    smallest = info.value.smallest
    assert smallest is not None and 90_909 <= smallest <= 90_909 * 1.01
    lam = _fake_search(smallest, wrecks_above=1e-3)  # and it is reachable
    assert lam <= 1e-3


def test_a_whole_lambda_is_found_when_sizes_are_not_monotone() -> None:
    """The raw codec's code widths jump: here sizes grow 30 % past lambda 1e-3, where the
    model is wrecked, so a wrecked probe larger than the target does not prove that no whole
    lambda meets it; the search for the wreck limit finds the one that does."""

    def bumped(lam: float) -> int:
        return int(1e6 / (1 + 1e4 * lam) * (1.3 if lam > 1e-3 else 1.0))

    lam = _fake_search(95_000, wrecks_above=1e-3, size=bumped)
    assert lam <= 1e-3 and bumped(lam) <= 95_000
