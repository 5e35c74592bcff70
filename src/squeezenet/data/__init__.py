"""Datasets (Fashion-MNIST, CIFAR-10, image folders, CSV manifests, synthetic) and transforms.

Members are imported on first use, so light submodules never load torch through here.
"""

from typing import TYPE_CHECKING

from squeezenet._lazy import lazy_exports

if TYPE_CHECKING:
    from squeezenet.data.datasets import (
        ArrayDataset,
        CorruptImageError,
        DatasetFileError,
        DatasetNotFoundError,
        FileListDataset,
        cifar10,
        csv_manifest,
        fashion_mnist,
        image_folder,
        synthetic,
    )
    from squeezenet.data.presets import CAFFE, CIFAR10, FASHION_MNIST, IMAGENET, PRESETS, Preprocess
    from squeezenet.data.registry import DataSpec, load_dataset
    from squeezenet.data.transforms import (
        BatchPipeline,
        eval_transform,
        normalize_batch,
        train_transform,
    )

_MEMBERS = {
    "ArrayDataset": "datasets",
    "CorruptImageError": "datasets",
    "DatasetFileError": "datasets",
    "DatasetNotFoundError": "datasets",
    "FileListDataset": "datasets",
    "cifar10": "datasets",
    "csv_manifest": "datasets",
    "fashion_mnist": "datasets",
    "image_folder": "datasets",
    "synthetic": "datasets",
    "CAFFE": "presets",
    "CIFAR10": "presets",
    "FASHION_MNIST": "presets",
    "IMAGENET": "presets",
    "PRESETS": "presets",
    "Preprocess": "presets",
    "DataSpec": "registry",
    "load_dataset": "registry",
    "BatchPipeline": "transforms",
    "eval_transform": "transforms",
    "normalize_batch": "transforms",
    "train_transform": "transforms",
}
__getattr__, __dir__ = lazy_exports(__name__, _MEMBERS)
__all__ = [
    "CAFFE",
    "CIFAR10",
    "FASHION_MNIST",
    "IMAGENET",
    "PRESETS",
    "ArrayDataset",
    "BatchPipeline",
    "CorruptImageError",
    "DataSpec",
    "DatasetFileError",
    "DatasetNotFoundError",
    "FileListDataset",
    "Preprocess",
    "cifar10",
    "csv_manifest",
    "eval_transform",
    "fashion_mnist",
    "image_folder",
    "load_dataset",
    "normalize_batch",
    "synthetic",
    "train_transform",
]
