"""predict: the model's own preprocessing and class names, torch and ONNX Runtime engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from squeezenet.data import CIFAR10
from squeezenet.data.datasets import CorruptImageError
from squeezenet.deploy.predict import predict
from squeezenet.errors import ConfigError, InputError
from squeezenet.io.weights import save_weights
from squeezenet.models import create_model
from squeezenet.workflows.load import load_any


@pytest.fixture()
def weights(tmp_path: Path) -> Path:
    model = create_model("squeezenet_small", seed=0)
    names = [f"class{i}" for i in range(10)]
    return save_weights(
        model,
        tmp_path / "m.safetensors",
        model_name="squeezenet_small",
        preprocess=CIFAR10,
        class_names=names,
    )


def test_predict_engines_agree(weights: Path, tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (40, 40), (80 * i, 30, 200 - 50 * i)).save(path)
        paths.append(path)
    loaded = load_any(weights)
    a = predict(loaded, paths, engine="torch", top=3)
    b = predict(loaded, paths, engine="onnxruntime", top=3)
    assert [p.indices for p in a] == [p.indices for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa.names[0].startswith("class") and len(pa.probabilities) == 3
        assert abs(pa.probabilities[0] - pb.probabilities[0]) < 1e-4
        assert pa.probabilities == sorted(pa.probabilities, reverse=True)


def test_predict_names_a_bad_image(weights: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(CorruptImageError, match=r"bad\.jpg") as info:
        predict(load_any(weights), [bad])
    assert isinstance(info.value, InputError)  # a user error: one line from the CLI


def test_predict_user_errors(weights: Path, tmp_path: Path) -> None:
    loaded = load_any(weights)
    with pytest.raises(ConfigError, match="top: expected a number of classes >= 1, got 0"):
        predict(loaded, [], top=0)
    with pytest.raises(ConfigError, match=r"engine: .* got 'tpu'"):
        predict(loaded, [], engine="tpu")
    bare = save_weights(
        create_model("squeezenet_small", seed=0),
        tmp_path / "bare.safetensors",
        model_name="squeezenet_small",
    )
    with pytest.raises(InputError, match="has no preprocessing record"):
        predict(load_any(bare), [])
