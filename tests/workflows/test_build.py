"""Tests for squeezenet.workflows.build: the one rule for model files, ``--set``, the crop rule,
subsets, and classes / channels taken from the data (tiny synthetic data, squeezenet_small)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from squeezenet.arch.preprocess import CIFAR10, FASHION_MNIST, IMAGENET
from squeezenet.data.sources import DataSpec, parse_data_spec
from squeezenet.errors import ConfigError, UserError
from squeezenet.io.weights import save_weights
from squeezenet.models import create_model, get_spec
from squeezenet.workflows.build import BuildSpec, build, preprocess_for
from squeezenet.workflows.load import is_model_file


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("squeezenet_small", False),
        ("squeezenet1_0", False),
        ("model.safetensors", True),
        ("model.sqz", True),
        ("./squeezenet_small", True),  # a separator: the file, not the registry name
        ("runs/a/model", True),
        ("model.pt", False),  # neither a model-file suffix nor a separator
    ],
)
def test_is_model_file_is_suffix_or_separator(spec: str, expected: bool) -> None:
    assert is_model_file(spec) is expected


def test_is_model_file_takes_paths() -> None:
    assert is_model_file(Path("runs") / "a" / "model")
    assert is_model_file(Path("model.sqz"))
    assert not is_model_file(Path("squeezenet1_0"))


def test_a_file_named_like_a_registry_model_does_not_shadow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "squeezenet_small").write_bytes(b"not a model")
    assert not is_model_file("squeezenet_small")
    built = build(BuildSpec("squeezenet_small", "synthetic", train=False))
    assert built.model_name == "squeezenet_small"


@pytest.fixture
def small_weights(tmp_path: Path) -> Path:
    model = create_model("squeezenet_small", seed=0, num_classes=10).eval()
    names = [f"class{i}" for i in range(10)]
    return save_weights(
        model,
        tmp_path / "small.safetensors",
        model_name="squeezenet_small",
        preprocess=CIFAR10,
        class_names=names,
    )


def test_set_on_a_model_file_is_a_config_error(small_weights: Path) -> None:
    spec = BuildSpec(str(small_weights), "synthetic", overrides={"dropout": 0.1})
    with pytest.raises(ConfigError, match="--set changes a registry model's config") as caught:
        build(spec)
    assert isinstance(caught.value, UserError)
    # Checked before any data is loaded: a dataset that does not exist is not reached.
    with pytest.raises(ConfigError, match="--set"):
        build(BuildSpec(str(small_weights), "no-such-dataset", overrides={"dropout": 0.1}))


def test_a_model_file_keeps_its_model_and_preprocessing(small_weights: Path) -> None:
    built = build(BuildSpec(str(small_weights), "synthetic", train=False))
    assert built.model_name == "squeezenet_small" and built.preprocess == CIFAR10
    assert built.train_data is None and len(built.test_data) == 128
    with pytest.raises(RuntimeError, match="train=False"):
        _ = built.train_split


def _image_folder(root: Path, classes: tuple[str, ...], per_class: int) -> Path:
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((40, 48, 3), 30 * label + i, np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_crop_rule_for_folder_and_csv_data(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path / "imgs", ("ant", "bee", "cat"), 2)
    manifest = folder / "all.csv"
    manifest.write_text("path,label\nant/0.png,0\nbee/0.png,1\ncat/1.png,2\n")
    classes = {str(folder): ["ant", "bee", "cat"], str(manifest): ["0", "1", "2"]}
    for data, names in classes.items():
        built = build(BuildSpec("squeezenet_small", data))
        # The registry model's natural input size, resized from the short side at 256/224.
        assert (built.preprocess.crop, built.preprocess.resize) == (32, 37)
        assert built.preprocess.mean == IMAGENET.mean and built.preprocess.channels == 3
        assert built.classes == names
    size = get_spec("squeezenet1_0").input_size
    for kind in ("csv", "folder"):
        preprocess = preprocess_for("squeezenet1_0", DataSpec(kind, tmp_path))
        assert (preprocess.crop, preprocess.resize) == (size, round(size * 256 / 224))
    # Named datasets keep their preset.
    assert preprocess_for("squeezenet1_0", parse_data_spec("synthetic")) == CIFAR10
    assert preprocess_for("squeezenet_small", DataSpec("fashion-mnist")) == FASHION_MNIST


def test_a_model_file_on_folder_data_keeps_its_crop(tmp_path: Path, small_weights: Path) -> None:
    folder = _image_folder(tmp_path / "imgs", ("ant", "bee"), 1)
    built = build(BuildSpec(str(small_weights), str(folder)))
    assert built.preprocess == CIFAR10  # not the crop rule: the file's own preprocessing


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, 512), (-3, 512), (1, 1), (10, 10), (511, 511), (512, 512), (10_000, 512)],
)
def test_subsets_only_when_the_count_is_below_the_split(count: int, expected: int) -> None:
    built = build(BuildSpec("squeezenet_small", "synthetic", train_images=count))
    assert len(built.train_split) == expected
    assert len(built.test_data) == 128  # test_images=0: the whole split


def test_subsets_are_seeded_and_differ_between_splits() -> None:
    def images(seed: int) -> tuple[np.ndarray, np.ndarray]:
        spec = BuildSpec("squeezenet_small", "synthetic", seed=seed, train_images=8, test_images=8)
        built = build(spec)
        train, test = built.train_split, built.test_data
        return train.images, test.images  # type: ignore[union-attr]

    first, again, other = images(0), images(0), images(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])
    whole = build(BuildSpec("squeezenet_small", "synthetic", test_images=500)).test_data
    assert len(whole) == 128  # a count past the split takes it whole, without repeats


def _fashion_mnist_files(folder: Path, n: int) -> Path:
    """Tiny IDX files in the Fashion-MNIST layout (both splits)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        dims = b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
        pixels = rng.integers(0, 255, n * 28 * 28, dtype=np.uint8).tobytes()
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + dims + pixels)
        labels = (np.arange(n) % 10).astype(np.uint8).tobytes()
        header = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big")
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels)
    return folder


def test_classes_and_channels_come_from_the_data(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path / "imgs", ("ant", "bee", "cat"), 1)
    colour = build(BuildSpec("squeezenet_small", str(folder)))
    assert colour.classes == ["ant", "bee", "cat"]
    config = colour.model.config  # type: ignore[union-attr]
    assert (config.num_classes, config.in_channels) == (3, 3)
    grey_dir = _fashion_mnist_files(tmp_path / "fashion", 20)
    grey = build(BuildSpec("squeezenet_small", "fashion-mnist", data_dir=str(grey_dir)))
    config = grey.model.config  # type: ignore[union-attr]
    assert (config.num_classes, config.in_channels) == (10, 1)
    assert grey.preprocess == FASHION_MNIST and grey.classes[0] == "T-shirt/top"
    synthetic = build(BuildSpec("squeezenet_small", "synthetic", overrides={"num_classes": 4}))
    assert synthetic.model.config.num_classes == 4  # type: ignore[union-attr]  # --set wins
