"""Tests for squeezenet.workflows.compress_file: specs, stage sizes, end to end on small and
published models, the distillation hook, atomic writes."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from squeezenet.arch.preprocess import CIFAR10, Preprocess
from squeezenet.compress import PrunePolicy, centroid_parameters, layer_aliases
from squeezenet.compress.config import MIXED_BITS, CompressConfig, describe_bits, describe_policy
from squeezenet.compress.sizes import ALEXNET_DENSE_BYTES, stage_sizes
from squeezenet.compress.spellings import parse_bits, parse_policy
from squeezenet.errors import ConfigError, MissingFileError, UserError
from squeezenet.formats.model import CompressedLayer, CompressedModel
from squeezenet.formats.sqz import decode_sqz, read_sqz
from squeezenet.io.weights import LoadedModel, save_weights
from squeezenet.models import create_model
from squeezenet.models.summary import registered_params
from squeezenet.workflows.compress_file import (
    compress_file,
    compress_model,
    decompress_sqz,
    import_caffe_dc,
)
from squeezenet.workflows.load import load_any


def test_alexnet_baseline_is_the_paper_size() -> None:
    assert ALEXNET_DENSE_BYTES == 4 * registered_params("alexnet") == 244_403_360


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("6", 6),
        (" 16 ", 16),
        ("mixed", MIXED_BITS),
        ("*.expand3x3=5, *=8", (("*.expand3x3", 5), ("*", 8))),
        ("conv10=4", (("conv10", 4),)),
    ],
)
def test_parse_bits(spec: str, expected: object) -> None:
    assert parse_bits(spec) == expected


@pytest.mark.parametrize("spec", ["0", "17", "eight", "conv10=", "=4", "conv10=x", "conv10=99"])
def test_parse_bits_rejects(spec: str) -> None:
    with pytest.raises(ConfigError, match="--bits"):
        parse_bits(spec)


def test_parse_bits_file(tmp_path: Path) -> None:
    path = tmp_path / "bits.json"
    path.write_text(json.dumps({"fire*.expand3x3": 5, "*": 7}))
    assert parse_bits(str(path)) == (("fire*.expand3x3", 5), ("*", 7))
    path.write_text(json.dumps({"*": 0}))
    with pytest.raises(ValueError, match=r"1\.\.16"):
        parse_bits(str(path))
    path.write_text("[8]")
    with pytest.raises(ValueError, match="JSON object"):
        parse_bits(str(path))


def test_mixed_preset_covers_squeezenet_8_6() -> None:
    """The named preset: 8 bits on conv1, squeeze, expand 1x1; 6 on expand 3x3 and conv10."""
    aliases = layer_aliases(create_model("squeezenet1_0")).values()
    widths = {alias: next(b for p, b in MIXED_BITS if fnmatchcase(alias, p)) for alias in aliases}
    assert len(widths) == 26
    assert {a for a, b in widths.items() if b == 6} == {
        *(f"fire{i}.expand3x3" for i in range(2, 10)),
        "conv10",
    }
    assert all(b == 8 for a, b in widths.items() if b != 6)
    assert describe_bits(MIXED_BITS).startswith("conv1=8,fire*.squeeze=8")


def test_parse_policy(tmp_path: Path) -> None:
    assert parse_policy("none") is None
    assert parse_policy("paper") == PrunePolicy.paper()
    assert parse_policy("0.5") == PrunePolicy.uniform(0.5)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"*.expand3x3": 0.6}))
    assert parse_policy(str(path)) == PrunePolicy.per_layer({"*.expand3x3": 0.6})
    assert describe_policy(None) == "none"
    assert describe_policy(PrunePolicy.paper()) == "paper"
    assert describe_policy(PrunePolicy.uniform(0.5)) == "*=0.5"
    with pytest.raises(MissingFileError, match="no such policy file"):
        parse_policy(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="sparsity"):
        parse_policy("1.5")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bits": 0}, "CompressConfig.bits"),
        ({"bits": (("*", 17),)}, "CompressConfig.bits"),
        ({"init": "kmeans++"}, "CompressConfig.init"),
        ({"codec": "zstd"}, "CompressConfig.codec"),
        ({"codebook_dtype": "int8"}, "CompressConfig.codebook_dtype"),
        ({"gap_bits": 0}, "CompressConfig.gap_bits"),
        ({"iters": -1}, "CompressConfig.iters"),
    ],
)
def test_config_validation_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field) as caught:
        CompressConfig(**change)
    assert isinstance(caught.value, UserError)  # the CLI prints one line and exits 2


def test_stage_sizes_by_hand() -> None:
    """16 weights, 3 stored at 2 bits, a 3-entry codebook, 2 biases."""
    layer = CompressedLayer(
        name="conv",
        shape=(2, 8),
        bits=2,
        codebook=np.array([-1.0, 0.5, 1.0], np.float32),
        positions=np.array([1, 3, 15]),
        codes=np.array([0, 1, 2], np.uint16),
        bias=np.zeros(2, np.float32),
    )
    cm = CompressedModel("squeezenet_small", {}, layers=[layer])
    dense, pruned, quantized, file = stage_sizes(cm, 40)
    assert dense.bytes == (16 * 32 + 2 * 32) // 8  # 72
    assert pruned.bytes == -(-(3 * 32 + 3 * 4 + 2 * 32) // 8)  # 172 bits -> 22 bytes
    assert quantized.bytes == -(-(3 * 2 + 3 * 4 + 3 * 32 + 2 * 32) // 8)  # 178 bits -> 23
    assert (file.bytes, file.measured, dense.measured) == (40, True, False)


def _small_weights(path: Path) -> Path:
    model = create_model("squeezenet_small", seed=0)
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        model.train()(torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    names = ["c" + str(i) for i in range(10)]
    return save_weights(
        model.eval(), path, model_name="squeezenet_small", preprocess=CIFAR10, class_names=names
    )


def test_small_model_end_to_end(tmp_path: Path) -> None:
    source = _small_weights(tmp_path / "small.safetensors")
    config = CompressConfig(policy=PrunePolicy.uniform(0.6), bits=(("*.expand3x3", 4), ("*", 6)))
    result = compress_file(source, tmp_path / "small.sqz", config)
    data = (tmp_path / "small.sqz").read_bytes()
    assert data == result.data and result.report.file_bytes == len(data)
    decoded = load_any(tmp_path / "small.sqz")
    assert decoded.preprocess == CIFAR10 and decoded.class_names == [
        "c" + str(i) for i in range(10)
    ]
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(decoded.model(x), result.model.eval()(x))
    report = result.report.to_dict()
    sizes = [stage["bytes"] for stage in report["stages"]]
    assert sizes == sorted(sizes, reverse=True)  # every stage shrinks the model
    assert report["ratio_alexnet"] == pytest.approx(ALEXNET_DENSE_BYTES / len(data))
    assert report["policy"] == "*=0.6" and report["bits"] == "*.expand3x3=4,*=6"
    for row in result.report.layers:
        assert row.density == pytest.approx(0.4, abs=0.01)
        assert row.clusters <= 2**row.bits and row.bits == (4 if "expand3x3" in row.name else 6)
    assert set(report["seconds"]) >= {"load", "prune", "quantize", "encode", "write"}
    json.dumps(report)  # JSON-able


def test_policy_none_keeps_existing_zeros(tmp_path: Path) -> None:
    model = create_model("squeezenet_small", seed=0).eval()
    with torch.no_grad():
        model.features[0].weight[:, :, 0, :] = 0.0  # a third of conv1 is zero
    loaded = LoadedModel(model, "squeezenet_small", {}, CIFAR10, None, tmp_path)
    result = compress_model(loaded, CompressConfig(policy=None, bits=5))
    conv1 = result.compressed.layers[0]
    assert conv1.density == pytest.approx(2 / 3)
    assert all(layer.density == 1.0 for layer in result.compressed.layers[1:])
    assert 0.0 not in conv1.codebook  # zeros are not a cluster


def test_policy_never_makes_zeros_a_cluster(tmp_path: Path) -> None:
    """A policy pruning less than a layer's existing sparsity still stores no zero."""
    model = create_model("squeezenet_small", seed=0).eval()
    with torch.no_grad():
        model.features[0].weight[:, :, 0, :] = 0.0  # a third of conv1 is zero
    loaded = LoadedModel(model, "squeezenet_small", {}, CIFAR10, None, tmp_path)
    result = compress_model(loaded, CompressConfig(policy=PrunePolicy.uniform(0.1), bits=5))
    conv1 = result.compressed.layers[0]
    assert conv1.density == pytest.approx(2 / 3)
    assert 0.0 not in conv1.codebook
    assert result.prune is not None and result.prune.layers[0].kept == len(conv1.positions)
    assert result.compressed.layers[1].density == pytest.approx(0.9, abs=1e-3)


def test_distill_hook(tmp_path: Path) -> None:
    """The hook sees the weight-shared student, the untouched teacher and the preprocessing;
    what it does to the centroids reaches the file."""
    model = create_model("squeezenet_small", seed=0).eval()
    loaded = LoadedModel(model, "squeezenet_small", {}, CIFAR10, None, tmp_path)
    seen: dict[str, Any] = {}

    def distill(student: nn.Module, teacher: nn.Module, preprocess: Preprocess | None) -> Any:
        seen.update(preprocess=preprocess, teacher_params=len(list(teacher.parameters())))
        seen["teacher_zeros"] = int((teacher.features[0].weight == 0).sum())
        with torch.no_grad():
            for centroids in centroid_parameters(student).values():
                centroids.mul_(2.0)
        return {"steps": 1}

    config = CompressConfig(policy=PrunePolicy.uniform(0.5), bits=4)
    twin = create_model("squeezenet_small", seed=0).eval()
    baseline = compress_model(
        LoadedModel(twin, "squeezenet_small", {}, CIFAR10, None, tmp_path), config
    )
    result = compress_model(loaded, config, distill=distill)
    assert seen["preprocess"] == CIFAR10 and seen["teacher_zeros"] == 0  # teacher not pruned
    assert result.report.distill == {"steps": 1} and "distill" in result.report.seconds
    for got, base in zip(decode_sqz(result.data).layers, baseline.compressed.layers, strict=True):
        np.testing.assert_array_equal(got.codebook, 2 * base.codebook)
        np.testing.assert_array_equal(got.positions, base.positions)
        np.testing.assert_array_equal(got.codes, base.codes)


def test_failed_compress_leaves_no_file(tmp_path: Path) -> None:
    source = _small_weights(tmp_path / "small.safetensors")
    target = tmp_path / "out.sqz"
    target.write_bytes(b"old")
    config = CompressConfig(bits=(("conv1", 8),))  # the float layers cannot be exported
    with pytest.raises(ConfigError, match="quantize it first"):
        compress_file(source, target, config)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.sqz", "small.safetensors"]
    with pytest.raises(MissingFileError, match="output folder"):
        compress_file(source, tmp_path / "no" / "out.sqz", CompressConfig())


# --- the published Deep Compression SqueezeNet ---------------------------------------------


@pytest.fixture(scope="module")
def imported(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("published") / "squeezenet.safetensors"
    import_caffe_dc(shared_data / "squeezenet-dc" / "compressed_SqueezeNet.net", out)
    return out


def test_import_is_the_caffe_model(imported: Path) -> None:
    loaded = load_any(imported)
    assert loaded.model_name == "squeezenet1_0"
    assert loaded.config["final_conv_padding"] == 1
    assert loaded.preprocess is not None and loaded.preprocess.name == "caffe"
    assert loaded.class_names is not None and loaded.class_names[0] == "tench"
    weights = [m.weight for m in loaded.model.modules() if isinstance(m, nn.Conv2d)]
    assert sum(int((w != 0).sum()) for w in weights) == 415_921
    assert sum(p.numel() for p in loaded.model.parameters()) == 1_248_424


def test_lossless_8_bit_is_bit_identical(imported: Path, tmp_path: Path) -> None:
    result = compress_file(imported, tmp_path / "b8.sqz", CompressConfig(policy=None, bits=8))
    assert result.report.file_bytes <= 560_000  # published file: 675,763
    assert all(row.rmse == 0.0 for row in result.report.layers)
    decompress_sqz(tmp_path / "b8.sqz", tmp_path / "b8.safetensors")
    expected = load_any(imported).model.state_dict()
    for path in (tmp_path / "b8.sqz", tmp_path / "b8.safetensors"):
        got = load_any(path).model.state_dict()
        assert set(got) == set(expected)
        for key, value in expected.items():
            assert torch.equal(got[key], value), key


def test_paper_policy_reproduces_the_published_pattern(imported: Path) -> None:
    """--policy paper on the published weights prunes nothing new: same positions, same file."""
    config = CompressConfig(policy=PrunePolicy.paper(), bits=6)
    paper = compress_model(load_any(imported), config)
    none = compress_model(load_any(imported), CompressConfig(policy=None, bits=6))
    assert sum(row.stored for row in paper.report.layers) == 415_921
    assert paper.data == none.data


@pytest.mark.parametrize(("bits", "budget"), [("6", 481_000), ("mixed", 481_000)])
def test_sub_047_mib_files(imported: Path, tmp_path: Path, bits: str, budget: int) -> None:
    result = compress_file(imported, tmp_path / "q.sqz", CompressConfig(bits=parse_bits(bits)))
    assert result.report.file_bytes <= budget
    layers = read_sqz(tmp_path / "q.sqz").layers
    assert sum(len(layer.positions) for layer in layers) == 415_921  # no weight pruned
    widths = {layer.name: layer.bits for layer in layers}
    if bits == "mixed":
        assert widths["features.0"] == 8 and widths["classifier.1"] == 6
        assert widths["features.12.squeeze"] == 8 and widths["features.12.expand3x3"] == 6
    else:
        assert set(widths.values()) == {6}
