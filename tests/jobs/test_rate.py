"""ECSQ at a byte target: the bisection meets it within 1 %, never above it."""

from __future__ import annotations

import pytest

from squeezenet.errors import ConfigError
from squeezenet.io.weights import LoadedModel
from squeezenet.jobs.compress_config import CompressConfig
from squeezenet.jobs.compress_file import compress_model
from squeezenet.jobs.rate import TOLERANCE
from squeezenet.models import create_model


def _loaded() -> LoadedModel:
    model = create_model("squeezenet_small", seed=0, num_classes=10)
    return LoadedModel(model, "squeezenet_small", {"num_classes": 10}, None, None, None)  # type: ignore[arg-type]


def test_lambda_gives_a_smaller_file_than_kmeans() -> None:
    kmeans = compress_model(_loaded(), CompressConfig(bits=6))
    ecsq = compress_model(_loaded(), CompressConfig(bits=6, rate_lambda=1e-4))
    assert ecsq.report.rate is not None and ecsq.report.rate["rate_lambda"] == 1e-4
    assert len(ecsq.data) < len(kmeans.data)


@pytest.mark.parametrize("fraction", [0.5, 0.3])
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
