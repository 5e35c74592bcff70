"""Datasets (Fashion-MNIST, CIFAR-10, image folders, CSV manifests, synthetic) and transforms.

The preprocessing presets live in ``squeezenet.arch`` (plain data) and are re-exported here.
"""

from squeezenet.arch.preprocess import (
    CAFFE,
    CIFAR10,
    FASHION_MNIST,
    IMAGENET,
    PRESETS,
    Preprocess,
)
from squeezenet.data.cifar import cifar10
from squeezenet.data.datasets import (
    ArrayDataset,
    CorruptImageError,
    DatasetFileError,
    DatasetNotFoundError,
    FileListDataset,
    csv_manifest,
    image_folder,
    synthetic,
)
from squeezenet.data.fashion import fashion_mnist
from squeezenet.data.sources import DataSpec, load_dataset
from squeezenet.data.transforms import (
    BatchPipeline,
    eval_transform,
    normalize_batch,
    train_transform,
)

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
