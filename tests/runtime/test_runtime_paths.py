"""The runtime's error and side paths: each checked directly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import squeezenet
from squeezenet.arch.config import AlexNetConfig
from squeezenet.arch.preprocess import CIFAR10
from squeezenet.deploy.engines import make_engine
from squeezenet.errors import ConfigError, InputError, MissingDependencyError, MissingFileError
from squeezenet.formats.model import CompressedModel
from squeezenet.models import create_model
from squeezenet.runtime.classifier import Classifier, top_predictions
from squeezenet.runtime.evaluate import evaluate
from squeezenet.runtime.images import CorruptImageError
from squeezenet.runtime.model_file import ModelFile, state_keys, write_weights
from squeezenet.train.config import recipe
from squeezenet.train.resume import check_resume_counters
from squeezenet.workflows.compress_file import decompress_sqz, import_caffe_dc


def test_the_torch_names_need_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(MissingDependencyError, match=r"squeezenet-dc\[torch\].*squeezenet.load"):
        squeezenet.create_model  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        squeezenet.nope  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.parametrize("engine", ["numpy", "onnxruntime-graph"])
def test_the_runtime_engines_run_a_torch_module(engine: str) -> None:
    model = create_model("squeezenet_small", seed=0, batch_norm=True).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(x).numpy()
    logits = make_engine(engine, model, (3, 32, 32))(x)
    assert np.abs(logits - reference).max() / (reference.max() - reference.min()) < 1e-4
    with pytest.raises(ConfigError, match="runs SqueezeNets only"):
        make_engine(engine, create_model("alexnet"), (3, 224, 224))


def _file(tmp_path: Path, preprocess: object = CIFAR10) -> ModelFile:
    model = create_model("squeezenet_small", seed=0)
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    return ModelFile("squeezenet_small", {}, preprocess, None, weights, tmp_path / "m.sqz")  # type: ignore[arg-type]


def test_classifier_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no preprocessing record"):
        Classifier(_file(tmp_path, None))
    classifier = Classifier(_file(tmp_path))
    with pytest.raises(InputError, match=r"takes prepared \(N, 3, 32, 32\) batches"):
        classifier.logits(np.zeros((1, 3, 28, 28), np.float32))
    with pytest.raises(ConfigError, match="top: expected a number of classes >= 1"):
        top_predictions(np.zeros((1, 10)), ["x"], None, 0)
    assert classifier.predict(np.zeros((32, 32, 3), np.uint8))[0].names[0].isdigit()


def test_evaluate_skips_unreadable_images_only_when_asked(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), (200, 10, 10)).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    samples = [(tmp_path / "good.png", 1), (tmp_path / "bad.png", 2)]
    classifier = Classifier(_file(tmp_path))
    result = evaluate(classifier.logits, samples, CIFAR10, skip_bad=True)
    assert result.n == 1 and result.skipped == 1
    with pytest.raises(CorruptImageError, match=r"bad\.png"):
        evaluate(classifier.logits, samples, CIFAR10)


def test_write_weights_refuses_a_model_that_does_not_fit(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"does not fit squeezenet_small: missing \['classifier"):
        write_weights(CompressedModel("squeezenet_small", {}), "x", tmp_path / "w.safetensors")
    with pytest.raises(ConfigError, match="no torch-free state dict for AlexNetConfig"):
        state_keys(AlexNetConfig())
    assert not (tmp_path / "w.safetensors").exists()


def test_the_conversions_name_a_missing_source(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="Caffe Deep Compression file not found"):
        import_caffe_dc(tmp_path / "x.net", tmp_path / "w.safetensors")
    with pytest.raises(MissingFileError, match=r"\.sqz file not found"):
        decompress_sqz(tmp_path / "x.sqz", tmp_path / "w.safetensors")


def test_a_resume_with_another_model_or_process_count_is_refused() -> None:
    from squeezenet.train.checkpoint import CheckpointError

    config = recipe("small")
    state = {"train_config": config.to_dict(), "model_config": {"width": 1}, "world_size": 1}
    check_resume_counters(state, config, {"width": 1}, 1)
    with pytest.raises(CheckpointError, match="model config field 'width' was 1"):
        check_resume_counters(state, config, {"width": 2}, 1)
    with pytest.raises(CheckpointError, match="written by 1 processes"):
        check_resume_counters(state, config, {"width": 1}, 2)
