"""Model files read without torch: every registered SqueezeNet's .sqz decodes to the network
torch builds from it; weights files read back; other architectures fail in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from squeezenet.arch.preprocess import CIFAR10, FASHION_MNIST, PRESETS
from squeezenet.compress.plain_data import from_compressed, to_compressed
from squeezenet.errors import ConfigError, MissingFileError
from squeezenet.formats.sqz import write_sqz
from squeezenet.io.weights import save_weights
from squeezenet.models import create_model
from squeezenet.runtime.classifier import Classifier, make_network
from squeezenet.runtime.model_file import ModelFile, WeightsFileError, read_model, write_weights

CASES = [
    ("squeezenet_small", {"in_channels": 1}, FASHION_MNIST),
    ("squeezenet_small", {"bypass": "complex"}, CIFAR10),
    ("squeezenet1_1", {"bypass": "complex"}, PRESETS["imagenet"]),
    ("squeezenet1_0", {"final_conv_padding": 1, "bypass": "simple"}, PRESETS["caffe"]),
]


def _shared(name: str, options: dict[str, object]) -> torch.nn.Module:
    """A model whose weights take few values (as a quantized one's do), batch norms non-trivial."""
    model = create_model(name, seed=0, **options)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.copy_((module.weight * 16).round() / 16)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.3, 0.3, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model.eval()


@pytest.mark.parametrize(("name", "options", "preset"), CASES, ids=lambda c: str(c))
def test_a_sqz_runs_without_torch_as_torch_runs_it(
    tmp_path: Path, name: str, options: dict[str, object], preset: object
) -> None:
    compressed = to_compressed(_shared(name, options), model_name=name, preprocess=preset)
    path = tmp_path / "m.sqz"
    write_sqz(compressed, path)
    file = read_model(path)
    assert file.model_name == name and file.preprocess == preset
    classifier = Classifier(file)
    x = np.random.default_rng(0).normal(size=(2, *classifier.input_shape)).astype(np.float32)
    with torch.no_grad():
        reference = from_compressed(compressed).eval()(torch.from_numpy(x)).numpy()
    logits = classifier.logits(x)
    assert np.abs(logits - reference).max() / (reference.max() - reference.min()) < 1e-4
    dense = tmp_path / "dense.safetensors"
    report = write_weights(compressed, path, dense)
    torch_state = from_compressed(compressed).state_dict()
    written = load_file(str(dense))
    assert written.keys() == torch_state.keys()
    assert all(torch.equal(written[k], torch_state[k]) for k in written)
    assert report.params == sum(p.numel() for p in from_compressed(compressed).parameters())


def test_a_weights_file_reads_back(tmp_path: Path) -> None:
    model = _shared("squeezenet1_1", {})
    path = save_weights(
        model,
        tmp_path / "w.safetensors",
        model_name="squeezenet1_1",
        preprocess=PRESETS["imagenet"],
    )
    file = read_model(path)
    assert file.model_config() == model.config  # type: ignore[attr-defined]
    state = model.state_dict()
    assert all(np.array_equal(file.weights[k], state[k].numpy()) for k in state)


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="model file not found"):
        read_model(tmp_path / "nothere.sqz")
    (tmp_path / "x.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(WeightsFileError, match="no squeezenet metadata"):
        read_model(tmp_path / "x.safetensors")
    alexnet = ModelFile("alexnet", {}, PRESETS["imagenet"], None, {}, tmp_path / "a.sqz")
    with pytest.raises(
        ConfigError, match=r"runs only in torch: pip install 'squeezenet-dc\[torch\]'"
    ):
        make_network(alexnet)
    with pytest.raises(ConfigError, match="unknown runtime engine"):
        make_network(alexnet, "tpu")
