"""The runtime's image preparation is the torch path's, bit for bit, for every preset, image
size and mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from squeezenet.arch.preprocess import PRESETS, Preprocess
from squeezenet.data.transforms import eval_transform
from squeezenet.errors import InputError
from squeezenet.runtime.image_lists import folder_samples, labelled_images, manifest_samples
from squeezenet.runtime.images import (
    CorruptImageError,
    DatasetNotFoundError,
    as_image,
    prepare,
)

SIZES = [(500, 375), (375, 500), (256, 256), (257, 256), (200, 150), (30, 20), (32, 32), (28, 28)]
BICUBIC = Preprocess("custom", 64, 56, (0.5, 0.5, 0.5), (0.2, 0.3, 0.4), interpolation="bicubic")


@pytest.mark.parametrize("preset", [*PRESETS.values(), BICUBIC], ids=[*PRESETS, "bicubic"])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_prepare_equals_the_torchvision_eval_transform(preset: Preprocess, mode: str) -> None:
    rng = np.random.default_rng(0)
    for width, height in SIZES:
        pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
        image = Image.fromarray(pixels, "RGBA").convert(mode)
        expected = eval_transform(preset)(image).numpy()
        got = prepare([image], preset)[0]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


def test_arrays_and_paths_are_images(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    preset = PRESETS["cifar10"]
    from_array = prepare([pixels], preset)
    np.testing.assert_array_equal(from_array, prepare([tmp_path / "x.png"], preset))
    np.testing.assert_array_equal(
        prepare([pixels[..., :1]], PRESETS["fashion-mnist"]),
        prepare([pixels[..., 0]], PRESETS["fashion-mnist"]),
    )
    assert prepare([], preset).shape == (0, 3, 32, 32)
    with pytest.raises(InputError, match="uint8"):
        as_image(pixels.astype(np.float32), "RGB")


def test_bad_and_missing_images_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CorruptImageError, match=r"bad\.jpg"):
        prepare([tmp_path / "bad.jpg"], PRESETS["imagenet"])
    with pytest.raises(DatasetNotFoundError, match=r"nothere\.jpg"):
        prepare([tmp_path / "nothere.jpg"], PRESETS["imagenet"])


def test_image_lists(tmp_path: Path) -> None:
    for name in ("cat", "dog"):
        (tmp_path / "f" / name).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "f" / name / "1.png")
    samples, classes = folder_samples(tmp_path / "f")
    assert classes == ["cat", "dog"] and [label for _, label in samples] == [0, 1]
    (tmp_path / "m.csv").write_text("path,label\nf/cat/1.png,3\n")
    samples, classes = manifest_samples(tmp_path / "m.csv")
    assert samples == [(tmp_path / "f/cat/1.png", 3)] and classes == ["0", "1", "2", "3"]
    assert labelled_images(tmp_path / "f")[1] == ["cat", "dog"]
    with pytest.raises(DatasetNotFoundError, match=r"squeezenet-dc\[torch\]"):
        labelled_images("cifar10")
