"""The model and data of one experiment run, built the same way for sweeps and DSD."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from squeezenet.data.datasets import ArrayDataset, FileListDataset, draw
from squeezenet.data.presets import Preprocess
from squeezenet.data.registry import load_dataset, parse_data_spec
from squeezenet.formats.weights import load_model
from squeezenet.models import create_model


@dataclass
class Experiment:
    model: nn.Module
    model_name: str
    preprocess: Preprocess
    classes: list[str]
    train_data: ArrayDataset | FileListDataset
    test_data: ArrayDataset | FileListDataset


def build_experiment(
    model: str,
    data: str,
    *,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    train_images: int = 0,
    test_images: int = 0,
    data_dir: str | None = None,
) -> Experiment:
    """A registry model built for ``data`` (classes, channels), or a weights file loaded as it
    is; with seeded subsets of ``train_images`` / ``test_images`` when those are > 0."""
    spec = parse_data_spec(data)
    train_data = load_dataset(spec, "train", data_dir=data_dir, seed=seed)
    test_data = load_dataset(spec, "test", data_dir=data_dir, seed=seed)
    if train_images:
        train_data = draw(train_data, train_images, seed)
    if test_images:
        test_data = draw(test_data, min(test_images, len(test_data)), seed + 1)
    classes = list(train_data.classes)
    if Path(model).suffix in (".safetensors", ".sqz"):
        if overrides:
            raise ValueError("--set changes a registry model's config; a weights file is fixed")
        loaded = load_model(model)
        preprocess = loaded.preprocess or spec.default_preset
        return Experiment(
            loaded.model, loaded.model_name, preprocess, classes, train_data, test_data
        )
    preprocess = spec.default_preset
    config = {"num_classes": len(classes), "in_channels": preprocess.channels, **(overrides or {})}
    built = create_model(model, seed=seed, **config)
    return Experiment(built, model, preprocess, classes, train_data, test_data)
