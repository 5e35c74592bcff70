"""Datasets and transforms: real files where present, temp files otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from squeezenet.arch.preprocess import Preprocess
from squeezenet.data import (
    CAFFE,
    CIFAR10,
    DatasetNotFoundError,
    csv_manifest,
    eval_transform,
    fashion_mnist,
    image_folder,
    load_dataset,
    synthetic,
)
from squeezenet.data.datasets import CorruptImageError, DatasetFileError
from squeezenet.data.fashion import FASHION_MNIST_DIR
from squeezenet.data.transforms import BatchPipeline, normalize_batch, random_crop_flip
from squeezenet.errors import ConfigError, FileFormatError, InputError, MissingFileError, UserError

needs_fashion = pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="apt-get install -y dataset-fashion-mnist"
)


@needs_fashion
def test_fashion_mnist_from_the_debian_package() -> None:
    train, test = fashion_mnist("train"), fashion_mnist("test")
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.images.shape == (60_000, 28, 28, 1)
    assert np.bincount(test.labels).tolist() == [1000] * 10
    image, label = train[0]
    assert isinstance(image, Image.Image) and image.size == (28, 28) and 0 <= label < 10


def test_missing_fashion_mnist_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        fashion_mnist("train", tmp_path)


def test_cifar10_npz_test_split(shared_data: Path) -> None:
    data = load_dataset("cifar10", "test", data_dir=shared_data)
    assert len(data) == 10_000 and data.images.shape == (10_000, 32, 32, 3)
    assert data.classes[0] == "airplane" and np.bincount(data.labels).tolist() == [1000] * 10
    again = load_dataset("cifar10", "test", data_dir=shared_data)
    assert again.images is data.images  # decoded once, cached


def test_cifar10_without_a_folder_reads_squeezenet_data(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQUEEZENET_DATA", str(shared_data))
    data = load_dataset("cifar10", "test")
    assert data.images is load_dataset("cifar10", "test", data_dir=shared_data).images  # one cache


def test_unknown_dataset_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown dataset .*fashion-mnist, cifar10, synthetic"):
        load_dataset("no-such-dataset")


def test_a_missing_dataset_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"fashion-mnist, cifar10, synthetic"):
        load_dataset(str(tmp_path / "no" / "folder"))
    with pytest.raises(DatasetNotFoundError, match="manifest not found"):
        load_dataset(str(tmp_path / "missing.csv"))


def test_user_causable_data_errors_are_user_errors(tmp_path: Path) -> None:
    """The CLI prints these as one line with exit 2 (squeezenet.errors)."""
    with pytest.raises(DatasetNotFoundError, match="CIFAR-10 not found") as missing:
        load_dataset("cifar10", data_dir=tmp_path / "empty")
    assert isinstance(missing.value, MissingFileError) and isinstance(missing.value, UserError)
    assert isinstance(missing.value, FileNotFoundError)  # what callers caught before
    with pytest.raises(ConfigError) as unknown:
        load_dataset("imagenet-21k")
    assert isinstance(unknown.value, UserError)
    assert issubclass(CorruptImageError, InputError)
    with pytest.raises(ConfigError, match=r"Preprocess\.crop: expected >= 1"):
        Preprocess("custom", resize=0, crop=0, mean=(0.5,), std=(0.5,), channels=1)


def _write_idx(path: Path, header: bytes, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + payload)


def test_damaged_fashion_mnist_files_name_the_field(tmp_path: Path) -> None:
    images = tmp_path / "train-images-idx3-ubyte"
    labels = tmp_path / "train-labels-idx1-ubyte"
    _write_idx(labels, bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big"), bytes([0, 1]))
    _write_idx(images, bytes([0, 0, 9, 3]), b"")  # dtype 0x09: not uint8
    with pytest.raises(DatasetFileError, match="not a uint8 IDX file") as header:
        fashion_mnist("train", tmp_path)
    assert (header.value.field, header.value.offset) == ("header", 0)
    dims = b"".join(n.to_bytes(4, "big") for n in (2, 28, 28))
    _write_idx(images, bytes([0, 0, 8, 3]) + dims, bytes(100))  # 1,568 values expected
    with pytest.raises(DatasetFileError, match="expected 1568 values") as data:
        fashion_mnist("train", tmp_path)
    assert (data.value.field, data.value.offset) == ("data", 16)
    assert isinstance(data.value, FileFormatError) and isinstance(data.value, UserError)
    _write_idx(images, bytes([0, 0, 8, 3]) + dims, bytes(2 * 28 * 28))
    assert fashion_mnist("train", tmp_path).images.shape == (2, 28, 28, 1)


def test_damaged_manifest_is_a_file_format_error(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,class\na.png,0\n")
    with pytest.raises(DatasetFileError, match="columns path,label"):
        csv_manifest(manifest)
    manifest.write_text("path,label\na.png,cat\n")
    with pytest.raises(DatasetFileError, match=r"m\.csv:2: label 'cat' is not an integer"):
        csv_manifest(manifest)


def _write_images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.fromarray(np.full((40, 50, 3), 20 * i, np.uint8)).save(path)
        paths.append(path)
    return paths


def test_image_folder_and_manifest(tmp_path: Path) -> None:
    _write_images(tmp_path / "imgs" / "cat", 2)
    _write_images(tmp_path / "imgs" / "dog", 3)
    folder = image_folder(tmp_path / "imgs")
    assert folder.classes == ["cat", "dog"] and sorted(folder.labels.tolist()) == [0, 0, 1, 1, 1]
    manifest = tmp_path / "imgs" / "m.csv"
    manifest.write_text("path,label\ncat/0.png,0\ndog/1.png,1\n")
    data = csv_manifest(manifest, transform=eval_transform(CAFFE))
    x, y = data[1]
    assert x.shape == (3, 227, 227) and y == 1


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    bad = tmp_path / "a" / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(CorruptImageError, match=r"broken\.jpg"):
        image_folder(tmp_path)[0]


def test_caffe_preset_is_bgr_minus_mean() -> None:
    pixels = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)  # R, G, B
    out = normalize_batch(pixels, CAFFE).flatten().tolist()
    assert out == [30 - 104.0, 20 - 117.0, 10 - 123.0]  # B, G, R minus (104, 117, 123)


def test_batch_augmentation_is_seeded_and_shape_preserving() -> None:
    x = torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8)
    a = random_crop_flip(x, generator=torch.Generator().manual_seed(1))
    b = random_crop_flip(x, generator=torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    pipeline = BatchPipeline(CIFAR10, train=False)
    assert pipeline(x).dtype == torch.float32


def test_synthetic_is_seeded_and_shares_classes_across_splits() -> None:
    a, b = synthetic(64, seed=3), synthetic(64, seed=3)
    assert np.array_equal(a.images, b.images)
    test = synthetic(64, seed=3, split="test")
    assert not np.array_equal(a.images, test.images)


def test_cifar10_python_batches_folder(tmp_path: Path) -> None:
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    train = load_dataset(str(tmp_path), "train")
    assert len(train) == 20 and train.images.shape == (20, 32, 32, 3) and train.classes[1] == "c1"


def test_cifar10_batches_refuse_code(tmp_path: Path) -> None:
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a"]}))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Path("x"), b"labels": []}))
    with pytest.raises(DatasetFileError, match="refusing to load pathlib"):
        load_dataset(str(tmp_path), "test")
