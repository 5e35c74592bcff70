"""Tests for squeezenet.io.weights: the round trip and one user error per damaged file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from squeezenet.arch.preprocess import CIFAR10
from squeezenet.errors import FileFormatError, MissingFileError, UserError
from squeezenet.io.weights import WeightsFileError, load_model, save_weights
from squeezenet.models import create_model
from squeezenet.runtime.model_file import WEIGHTS_FORMAT as FORMAT_NAME
from squeezenet.runtime.model_file import WEIGHTS_VERSION as FORMAT_VERSION


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    model = create_model("squeezenet_small", seed=0).eval()
    return save_weights(
        model, tmp_path / "w.safetensors", model_name="squeezenet_small", preprocess=CIFAR10
    )


def _metadata(**changes: str) -> dict[str, str]:
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_name": "squeezenet_small",
        "config": "{}",
        "preprocess": json.dumps(CIFAR10.to_dict()),
        "class_names": "null",
    }
    return {**metadata, **changes}


def _error(path: Path) -> WeightsFileError:
    with pytest.raises(WeightsFileError) as caught:
        load_model(path)
    assert isinstance(caught.value, FileFormatError) and isinstance(caught.value, UserError)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    return caught.value


def test_round_trip(weights: Path) -> None:
    loaded = load_model(weights)
    assert loaded.model_name == "squeezenet_small" and loaded.preprocess == CIFAR10
    expected = create_model("squeezenet_small", seed=0).state_dict()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="weights file not found"):
        load_model(tmp_path / "none.safetensors")


def test_not_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00" * 64)
    assert "not a readable safetensors file" in str(_error(path))


def test_sqz_is_sent_to_load_any(tmp_path: Path) -> None:
    path = tmp_path / "m.sqz"
    path.write_bytes(b"SQZ")
    assert "load_any" in str(_error(path))


def test_metadata_errors_name_the_field(tmp_path: Path) -> None:
    tensors = {"x": torch.zeros(1)}
    cases = [
        ({"format": "other"}, "format", "no squeezenet metadata"),
        ({"format_version": "9"}, "format_version", "version '9' is not supported"),
        ({"config": "[1]"}, "config", "config is not an object"),
        ({"config": "{"}, "metadata", "damaged metadata"),
        ({"preprocess": '{"crop": 0}'}, "preprocess", "damaged preprocessing record"),
    ]
    for changes, field, needle in cases:
        path = tmp_path / "bad.safetensors"
        save_file(tensors, str(path), metadata=_metadata(**changes))
        error = _error(path)
        assert needle in str(error) and error.field == field, changes


def test_tensors_that_do_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata=_metadata())
    assert "tensors do not fit squeezenet_small" in str(_error(path))
