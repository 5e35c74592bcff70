"""Error and reshaping paths that the faster default suite no longer reaches through the
heavier tests it dropped: each checked directly, in milliseconds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from squeezenet.arch.preprocess import CIFAR10, FASHION_MNIST
from squeezenet.data.transforms import BatchPipeline
from squeezenet.deploy.int8 import Int8Config, int8_format
from squeezenet.errors import ConfigError
from squeezenet.formats.bitio import Reader, varint
from squeezenet.formats.header import complete_preprocess
from squeezenet.formats.model import CompressedModel
from squeezenet.formats.spec import SqzFormatError
from squeezenet.formats.sqz import encode_sqz


def test_int8_formats_are_checked() -> None:
    assert int8_format("u8u8") == "u8u8"
    with pytest.raises(ConfigError, match="int8 format: expected one of u8s7"):
        int8_format("u4s4")
    with pytest.raises(ConfigError, match="int8 format: expected one of"):
        Int8Config(format="u4s4")  # type: ignore[arg-type]


def test_header_rules_on_the_encoder_side() -> None:
    with pytest.raises(ValueError, match="preprocess: bad members"):
        complete_preprocess({**CIFAR10.to_dict(), "crop": 0})
    assert complete_preprocess(dataclasses.asdict(CIFAR10)) == CIFAR10.to_dict()
    with pytest.raises(ValueError, match="config must be JSON-serialisable"):
        encode_sqz(CompressedModel("m", {"x": object()}))
    with pytest.raises(ValueError, match=r"header JSON is .* bytes, the limit is 4 MiB"):
        encode_sqz(CompressedModel("m", {"x": "a" * (5 << 20)}))


def test_varints_are_bounded_and_minimal() -> None:
    with pytest.raises(ValueError, match="outside 0"):
        varint(-1)
    with pytest.raises(SqzFormatError, match="not a minimal varint"):
        Reader(bytes([0x81, 0x00])).varint("count", 0, 1 << 20)
    with pytest.raises(SqzFormatError, match="longer than 5 bytes"):
        Reader(bytes([0x80] * 6)).varint("count", 0, 1 << 20)


def test_batches_are_resized_and_given_the_model_channels() -> None:
    grey = torch.randint(0, 255, (2, 1, 20, 20), dtype=torch.uint8)
    out = BatchPipeline(CIFAR10, train=False)(grey)
    assert out.shape == (2, 3, 32, 32)
    colour = torch.randint(0, 255, (2, 3, 28, 28), dtype=torch.uint8)
    assert BatchPipeline(FASHION_MNIST, train=False)(colour).shape == (2, 1, 28, 28)
    assert np.isfinite(out.numpy()).all()
