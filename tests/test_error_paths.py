"""Error and reshaping paths that the faster default suite no longer reaches through the
heavier tests it dropped: each checked directly, in milliseconds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

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


# Error paths of the modules the redesign split (their uncovered lines, each checked directly).


def test_class_lists_name_the_unknown_one() -> None:
    from squeezenet.formats.spec import _standard, standard_class_names

    with pytest.raises(ValueError, match="unknown class list 'nope'; known: "):
        standard_class_names("nope")
    with pytest.raises(KeyError):
        _standard("nope")


def test_a_checkpoint_that_is_missing_damaged_or_for_another_model(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from squeezenet.models import create_model
    from squeezenet.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from squeezenet.train.run_folder import CHECKPOINT

    model = create_model("squeezenet_small", seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(CheckpointError, match=r"is missing\); start a new run"):
        load_checkpoint(tmp_path, model, optimizer)
    save_file({"x": torch.zeros(1)}, str(tmp_path / CHECKPOINT), metadata={"state": "{"})
    with pytest.raises(CheckpointError, match="damaged checkpoint metadata"):
        load_checkpoint(tmp_path, model, optimizer)
    save_checkpoint(
        tmp_path, create_model("squeezenet_small", seed=0, in_channels=1), optimizer, {}
    )
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_checkpoint(tmp_path, model, optimizer)


def test_an_unreadable_elapsed_record_counts_as_none(tmp_path: Path) -> None:
    from squeezenet.experiments.resumable import begin
    from squeezenet.train.run_folder import CHECKPOINT, ELAPSED_JSON, STATE_JSON

    (tmp_path / CHECKPOINT).write_bytes(b"")
    (tmp_path / ELAPSED_JSON).write_text("{not json")
    (tmp_path / STATE_JSON).write_text("[1, 2]")  # JSON, but not an object
    attempt = begin(tmp_path)
    assert attempt.carried == 0.0 and attempt.resumed_step == 0 and attempt.resume


def test_the_stem_width_and_a_fire_s_output_channels() -> None:
    from squeezenet.arch.config import SqueezeNetConfig
    from squeezenet.arch.layers import Fire, layer_list

    assert SqueezeNetConfig(stem="v1.0").stem_channels == 96
    assert SqueezeNetConfig(stem="v1.1").stem_channels == 64
    fires = [layer for layer in layer_list(SqueezeNetConfig()) if isinstance(layer, Fire)]
    assert [f.out_channels for f in fires][:2] == [128, 128]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"layers": {"*": 0.5}, "how": 1}, "unknown keys"),
        ({"layers": [0.5]}, "'layers' must map patterns to numbers"),
        ({"*": True}, "expected a number, got True"),
        (b"0.5", "expected a number, 'paper', 'std:Q' or a dict"),
        ("{not json", "invalid JSON"),
    ],
)
def test_prune_policy_spellings_name_the_problem(spec: object, message: str) -> None:
    from squeezenet.formats.policy import PrunePolicy, parse_prune_policy

    with pytest.raises(ConfigError, match=message):
        parse_prune_policy(spec)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"expected \(pattern, number\) pairs"):
        PrunePolicy((("*", "half"),))  # type: ignore[arg-type]


def test_pruning_and_weight_sharing_in_the_wrong_order_are_refused() -> None:
    from squeezenet.compress.prune import magnitude_mask, register_mask_, remove_pruning_
    from squeezenet.compress.weight_sharing import quantize_
    from squeezenet.models import create_model

    model = create_model("squeezenet_small", seed=0)
    quantize_(model, bits=4)
    conv = model.features[0]
    with pytest.raises(ValueError, match="prune before quantize_"):
        register_mask_(conv, magnitude_mask(conv.weight, 0.5, "sparsity"))
    pruned = create_model("squeezenet_small", seed=0)
    first = pruned.features[0]
    register_mask_(first, magnitude_mask(first.weight, 0.5, "sparsity"))
    torch.nn.utils.parametrize.register_parametrization(first, "weight", torch.nn.Identity())
    with pytest.raises(ValueError, match="parametrizations besides its prune mask"):
        remove_pruning_(pruned)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sparsities": (1.5,)}, "expected fractions in"),
        ({"bits": (0,)}, "expected widths 1..16"),
        ({"sparsities": (), "bits": ()}, "at least one sparsity or bit width"),
        ({"batch_size": 0}, "batch_size: expected >= 1"),
    ],
)
def test_a_sensitivity_config_names_the_field(fields: dict[str, object], message: str) -> None:
    from squeezenet.experiments.sensitivity_result import SensitivityConfig

    with pytest.raises(ConfigError, match=message):
        SensitivityConfig(**fields)  # type: ignore[arg-type]
