"""The one way to build a model and its data, for training runs, sweeps, DSD, the pipeline and
sensitivity alike.

Rules (each defined once, here):

- A model is a *model file* when :func:`squeezenet.workflows.load.is_model_file` says so; it is
  loaded as it is, and ``overrides`` (``--set``) are an error for it. Anything else is a registry
  name, built for the data: its classes, its channels, and ``overrides``.
- Crop: a registry model on CSV or folder images gets the model's natural input size, resized
  from the short side at 256/224 of it (the ImageNet convention); named datasets keep their
  preset. A model file keeps its own preprocessing.
- Subsets: a count with ``0 < count < len(split)`` in ``train_images`` / ``test_images`` draws a
  seeded subset (seed and seed + 1); 0, or a count of at least the split's size, takes the whole
  split.
- Classes come from the data (the training split, else the test split); a registry model gets
  ``num_classes`` and ``in_channels`` from them and from the preprocessing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import nn

from squeezenet.arch.preprocess import Preprocess
from squeezenet.data.datasets import ArrayDataset, FileListDataset, draw
from squeezenet.data.sources import DataSpec, load_dataset, parse_data_spec
from squeezenet.errors import ConfigError
from squeezenet.models import create_model, get_spec
from squeezenet.workflows.load import is_model_file, load_any

Data = ArrayDataset | FileListDataset


@dataclass(frozen=True)
class BuildSpec:
    """What to build: a model (registry name or model file) and a dataset spec."""

    model: str  # a registry name (built for the data) or a .safetensors / .sqz file
    data: str  # dataset spec: fashion-mnist, cifar10, synthetic, a CSV manifest or a folder
    overrides: Mapping[str, Any] = field(default_factory=dict)  # model config fields (--set)
    seed: int = 0  # seeds the model's initialisation and the subsets
    train_images: int = 0  # > 0: a seeded subset of the training split
    test_images: int = 0  # > 0: a seeded subset of the test split
    data_dir: str | None = None  # where the named dataset's files are
    download: bool = False  # let torchvision download a missing named dataset
    train: bool = True  # False: only the test split is loaded (train_data is None)


@dataclass
class Built:
    """A model ready for its data."""

    model: nn.Module
    model_name: str  # registry name
    preprocess: Preprocess
    classes: list[str]
    train_data: Data | None  # None when BuildSpec.train is False
    test_data: Data

    @property
    def train_split(self) -> Data:
        """The training data (built with ``BuildSpec.train``, the default)."""
        if self.train_data is None:
            raise RuntimeError("built with BuildSpec(train=False): no training data")
        return self.train_data


class TrainingSource(Protocol):
    """What a sweep trial and a DSD run share: a model and data to train from scratch."""

    @property
    def model(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def overrides(self) -> Any: ...  # (key, value) pairs or a mapping of model config fields
    @property
    def train(self) -> Any: ...  # a TrainConfig: its seed seeds the build
    @property
    def train_images(self) -> int: ...
    @property
    def test_images(self) -> int: ...


def build_for(source: TrainingSource, data_dir: str | None = None) -> Built:
    """:func:`build` of a sweep trial or DSD run: its model, data, overrides, seed, subsets."""
    return build(
        BuildSpec(
            source.model,
            source.data,
            overrides=dict(source.overrides),
            seed=source.train.seed,
            train_images=source.train_images,
            test_images=source.test_images,
            data_dir=data_dir,
        )
    )


def build(spec: BuildSpec) -> Built:
    """Build ``spec``'s model and load its data (see the module's rules).

    Raises:
        ConfigError: ``overrides`` given for a model file (before any data is loaded); an
            unknown registry name or dataset name.
        DatasetNotFoundError: the dataset's files are missing (the message says how to get them).
    """
    model_file = is_model_file(spec.model)
    if model_file and spec.overrides:
        raise ConfigError(
            f"--set changes a registry model's config, but {spec.model} is a model file; "
            "drop --set or give a registry name"
        )
    data_spec = parse_data_spec(spec.data)
    kwargs: dict[str, Any] = {"data_dir": spec.data_dir, "download": spec.download}
    train_data = None
    if spec.train:
        train_data = load_dataset(data_spec, "train", seed=spec.seed, **kwargs)
        train_data = _subset(train_data, spec.train_images, spec.seed)
    test_data = load_dataset(data_spec, "test", seed=spec.seed, **kwargs)
    test_data = _subset(test_data, spec.test_images, spec.seed + 1)
    classes = list((train_data if train_data is not None else test_data).classes)
    if model_file:
        loaded = load_any(spec.model)
        preprocess = loaded.preprocess or data_spec.default_preset
        return Built(loaded.model, loaded.model_name, preprocess, classes, train_data, test_data)
    preprocess = preprocess_for(spec.model, data_spec)
    config = {"num_classes": len(classes), "in_channels": preprocess.channels, **spec.overrides}
    model = create_model(spec.model, seed=spec.seed, **config)
    return Built(model, spec.model, preprocess, classes, train_data, test_data)


def preprocess_for(model: str, data_spec: DataSpec) -> Preprocess:
    """The preprocessing of registry model ``model`` on ``data_spec`` (the crop rule): the data's
    preset; on CSV or folder images with the model's input size as crop and 256/224 of it as
    the short side to resize to."""
    preprocess = data_spec.default_preset
    if data_spec.kind in ("csv", "folder"):
        size = get_spec(model).input_size
        preprocess = dataclasses.replace(preprocess, crop=size, resize=round(size * 256 / 224))
    return preprocess


def _subset(data: Data, count: int, seed: int) -> Data:
    """A seeded subset of ``count`` images when ``0 < count < len(data)``, else ``data``."""
    if count <= 0 or count >= len(data):
        return data
    return draw(data, count, seed)
