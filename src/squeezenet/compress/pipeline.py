"""Deep Compression on files: load -> prune -> quantize -> (distill) -> encode -> write, reported.

The orchestration layer of :mod:`squeezenet.compress`: the one module here that sits above
:mod:`squeezenet.formats` (it reads weights files and writes ``.sqz`` files), so it is not
re-exported from the package and nothing in ``compress`` imports it. It also holds the two file
conversions around it: the published Caffe Deep Compression file -> weights file, and ``.sqz`` ->
weights file. Each returns a plain report; printing is the CLI's job.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from squeezenet.compress.export import from_compressed, to_compressed
from squeezenet.compress.prune import (
    PrunePolicy,
    PruneReport,
    parse_prune_policy,
    prune_,
    prune_mask_of,
    pruning_report,
    register_mask_,
    weight_layers,
)
from squeezenet.compress.quantize import INITS, MAX_BITS, Init, QuantizeReport, quantize_
from squeezenet.compress.types import CompressedModel
from squeezenet.data.presets import Preprocess
from squeezenet.formats.atomic import atomic_write_bytes
from squeezenet.formats.bitio import Codec
from squeezenet.formats.caffe_dc import read_caffe_dc
from squeezenet.formats.spec import MAX_GAP_BITS
from squeezenet.formats.sqz import CodebookDtype, encode_sqz, gap_symbols, read_sqz
from squeezenet.formats.weights import LoadedModel, load_model, save_weights

logger = logging.getLogger(__name__)

# AlexNet at 32 bits: 61,100,840 parameters x 4 bytes, the paper's Table 2 baseline (240 MB).
ALEXNET_DENSE_BYTES = 244_403_360

BitsRules = tuple[tuple[str, int], ...]  # (fnmatch pattern, bits); the first match wins

# `--bits mixed`: 8 bits where re-clustering the published weights hurts most, 6 elsewhere.
# Alone at 5 bits, expand 1x1 (-4.4 pt) and squeeze (-3.8 pt) are the most sensitive groups and
# conv10 the least (-0.6 pt); this split costs ~2 pt top-1 without retraining (issue 4 probe).
MIXED_BITS: BitsRules = (
    ("conv1", 8),
    ("fire*.squeeze", 8),
    ("fire*.expand1x1", 8),
    ("fire*.expand3x3", 6),
    ("conv10", 6),
)
BIT_PRESETS: dict[str, BitsRules] = {"mixed": MIXED_BITS}
CODECS: tuple[str, ...] = ("auto", "huffman", "rans", "raw")
CODEBOOK_DTYPES: tuple[str, ...] = ("float32", "float16")
STAGE_GAP_BITS = 4  # relative-index width of the computed stage sizes (Deep Compression Sec. 2)

# distill(student, teacher, preprocess) -> JSON-able report or None. The student is
# weight-shared (its centroids are the trainable weights; assignments and zeros are fixed), the
# teacher is the uncompressed model as loaded (eval mode), preprocess the model's own input
# pipeline. Called after quantize_, before export (Deep Compression Sec. 3.3, offline).
Distiller = Callable[[nn.Module, nn.Module, Preprocess | None], Mapping[str, Any] | None]


@dataclasses.dataclass(frozen=True)
class CompressConfig:
    """What `compress` does to a model; every field has a CLI option of the same meaning."""

    # Magnitude pruning before sharing; None keeps the model's zeros as they are (the published
    # weights are already sparse). Zeros are never a cluster either way.
    policy: PrunePolicy | None = None
    # Codebook index width: one for all layers, or (pattern, bits) rules (first match wins;
    # unmatched layers stay float and must then hold <= 2**16 distinct values to export).
    bits: int | BitsRules = 8
    init: Init = "linear"  # k-means initialisation; the paper's choice is linear (Sec. 3.2)
    codec: Codec = "auto"  # per stream: auto keeps the smaller of raw and Huffman
    codebook_dtype: CodebookDtype = "float32"  # float16 halves codebooks, rounding them
    gap_bits: int | None = None  # relative-position width; None: smallest per layer
    iters: int = 300  # Lloyd iterations per layer (1-D k-means converges in far fewer)
    seed: int = 0  # seeds init="random"

    def __post_init__(self) -> None:
        if self.policy is not None and not isinstance(self.policy, PrunePolicy):
            raise ValueError(
                f"CompressConfig.policy: expected a PrunePolicy or None, got {self.policy!r}"
            )
        rules = (("*", self.bits),) if isinstance(self.bits, int) else self.bits
        for rule in rules:
            if not (isinstance(rule, tuple) and len(rule) == 2 and isinstance(rule[0], str)):
                raise ValueError(
                    f"CompressConfig.bits: expected (pattern, bits) pairs, got {rule!r}"
                )
            _check_width(rule[1], f"CompressConfig.bits for {rule[0]!r}")
        if self.init not in INITS:
            raise ValueError(
                f"CompressConfig.init: expected one of {', '.join(INITS)}, got {self.init!r}"
            )
        if self.codec not in CODECS:
            raise ValueError(
                f"CompressConfig.codec: expected one of {', '.join(CODECS)}, got {self.codec!r}"
            )
        if self.codebook_dtype not in CODEBOOK_DTYPES:
            raise ValueError(
                "CompressConfig.codebook_dtype: expected float32 or float16, "
                f"got {self.codebook_dtype!r}"
            )
        if self.gap_bits is not None and not 1 <= self.gap_bits <= MAX_GAP_BITS:
            raise ValueError(
                f"CompressConfig.gap_bits: expected 1..{MAX_GAP_BITS} or None, got {self.gap_bits}"
            )
        if self.iters < 0:
            raise ValueError(f"CompressConfig.iters: expected >= 0, got {self.iters}")


def _check_width(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BITS:
        raise ValueError(f"{what}: expected an integer width in 1..{MAX_BITS}, got {value!r}")
    return value


def parse_bits(spec: str | int) -> int | BitsRules:
    """``--bits``: ``"6"``; a preset (``"mixed"``); ``"PATTERN=BITS,..."`` (first match wins,
    patterns as in :func:`~squeezenet.compress.quantize_`); or a JSON file ``{pattern: bits}``.

    Raises:
        ValueError: the spec is none of these or a width is outside 1..16.
    """
    if isinstance(spec, int):
        return _check_width(spec, "--bits")
    text = spec.strip()
    if text in BIT_PRESETS:
        return BIT_PRESETS[text]
    if text.isdigit():
        return _check_width(int(text), "--bits")
    if "=" in text:
        rules = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            pattern, _, width = item.partition("=")
            if not pattern.strip() or not width.strip().isdigit():
                raise ValueError(f"--bits: expected PATTERN=BITS pairs, got {item!r} in {spec!r}")
            rules.append((pattern.strip(), _check_width(int(width), f"--bits {pattern.strip()}")))
        return tuple(rules)
    path = Path(text)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"--bits {path}: not a JSON object of pattern: bits ({exc})") from None
        if not isinstance(data, dict) or not data:
            raise ValueError(f"--bits {path}: expected a JSON object of pattern: bits")
        return tuple((str(p), _check_width(b, f"--bits {path} {p!r}")) for p, b in data.items())
    raise ValueError(
        f"--bits: expected a width 1..{MAX_BITS}, {' or '.join(BIT_PRESETS)}, PATTERN=BITS "
        f"pairs or a JSON file, got {spec!r}"
    )


def parse_policy(spec: str) -> PrunePolicy | None:
    """``--policy``: ``none`` (keep existing zeros), ``paper``, a sparsity, ``std:Q``, inline
    JSON, or a JSON policy file (see :func:`~squeezenet.compress.parse_prune_policy`).

    Raises:
        FileNotFoundError: ``spec`` is none of the keywords and names no file.
        ValueError: the policy is malformed.
    """
    text = spec.strip()
    if text == "none":
        return None
    if text == "paper" or text.startswith(("std:", "{")) or _is_number(text):
        return parse_prune_policy(text)
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(
            f"--policy {spec!r}: no such policy file; expected none, paper, a sparsity in 0..1, "
            "std:Q, inline JSON or a JSON file"
        )
    data = _read_policy_file(path)
    if data.get("format") == POLICY_FORMAT:
        return parse_prune_policy(data["prune"]) if data.get("prune") else None
    return parse_prune_policy(data)


# A planned policy (``squeezenet sensitivity --plan``) holds both halves of a compression:
# {"format": "squeezenet-policy", "version": 1, "prune": {"layers": {...}}, "bits": {...}}.
POLICY_FORMAT = "squeezenet-policy"


def _read_policy_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--policy {path}: not a JSON prune policy ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--policy {path}: expected a JSON object")
    if data.get("format") == POLICY_FORMAT and data.get("version") != 1:
        raise ValueError(
            f"--policy {path}: policy version {data.get('version')!r} is not supported (this "
            "package reads 1); upgrade squeezenet"
        )
    return data


def policy_bits(spec: str) -> int | BitsRules | None:
    """The bit widths a planned policy file carries (None: ``spec`` is no such file)."""
    path = Path(spec.strip())
    if not path.is_file():
        return None
    data = _read_policy_file(path)
    bits = data.get("bits") if data.get("format") == POLICY_FORMAT else None
    if bits is None:
        return None
    if not isinstance(bits, dict) or not bits:
        raise ValueError(f"--policy {path}: 'bits' must map layer patterns to widths")
    return tuple((str(p), _check_width(b, f"--policy {path} bits {p!r}")) for p, b in bits.items())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def describe_policy(policy: PrunePolicy | None) -> str:
    """``"none"``, ``"paper"`` or the rules, e.g. ``"*=0.5"`` / ``"std: *=1.0"``."""
    if policy is None:
        return "none"
    if policy == PrunePolicy.paper():
        return "paper"
    rules = ",".join(f"{pattern}={amount:g}" for pattern, amount in policy.rules)
    return rules if policy.method == "sparsity" else f"std: {rules}"


def describe_bits(bits: int | BitsRules) -> str:
    """``"6"`` or ``"conv1=8,fire*.squeeze=8,..."`` (the ``--bits`` spelling)."""
    return str(bits) if isinstance(bits, int) else ",".join(f"{p}={b}" for p, b in bits)


@dataclasses.dataclass(frozen=True)
class StageSize:
    """The size of the model after one Deep Compression stage (Deep Compression Fig. 1)."""

    stage: str  # dense | pruned | quantized | file
    bytes: int
    measured: bool  # True: bytes of a real file; False: computed from the layer contents
    note: str  # how the bytes are counted


def stage_sizes(cm: CompressedModel, file_bytes: int) -> tuple[StageSize, ...]:
    """Sizes after each stage, all counting biases and dense tensors at 32 bits.

    ``pruned``: stored weights at 32 bits plus 4-bit relative positions (with the escape
    symbols of docs/FORMAT.md); ``quantized``: the same with ``bits``-wide codes and float32
    codebooks (before entropy coding); ``file``: the .sqz bytes, header and CRC included.
    """
    extra = 32 * sum(int(np.asarray(a).size) for a in cm.dense.values())
    dense = pruned = quantized = extra
    for layer in cm.layers:
        bias = 32 * (len(layer.bias) if layer.bias is not None else 0)
        positions = STAGE_GAP_BITS * len(gap_symbols(np.asarray(layer.positions), STAGE_GAP_BITS))
        stored = len(layer.positions)
        dense += 32 * layer.numel + bias
        pruned += 32 * stored + positions + bias
        quantized += layer.bits * stored + positions + 32 * len(layer.codebook) + bias
    return (
        StageSize("dense", math.ceil(dense / 8), False, "every weight at 32 bits"),
        StageSize("pruned", math.ceil(pruned / 8), False, "stored weights at 32 bits + 4-bit gaps"),
        StageSize(
            "quantized", math.ceil(quantized / 8), False, "codes + 4-bit gaps + float32 codebooks"
        ),
        StageSize("file", file_bytes, True, ".sqz file: entropy-coded streams, header, CRC"),
    )


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One layer of a :class:`CompressReport`."""

    name: str  # state-dict prefix
    shape: tuple[int, ...]
    stored: int  # weights that hold a code
    density: float  # stored / numel
    bits: int
    clusters: int  # codebook entries
    rmse: float  # change of the stored weights caused by sharing (0 when lossless)


@dataclasses.dataclass(frozen=True)
class CompressReport:
    """What :func:`compress_model` did and the sizes it reached."""

    model_name: str
    bits: str  # the --bits spelling
    policy: str  # "none", "paper" or the rules (describe_policy)
    stages: tuple[StageSize, ...]
    layers: tuple[LayerRow, ...]
    seconds: dict[str, float]  # wall time per stage
    distill: dict[str, Any] | None = None  # the distiller's report, when one ran
    output: str | None = None  # the written file

    @property
    def file_bytes(self) -> int:
        return self.stages[-1].bytes

    @property
    def dense_bytes(self) -> int:
        return self.stages[0].bytes

    def to_dict(self) -> dict[str, Any]:
        stages = [
            {
                **dataclasses.asdict(stage),
                "ratio_dense": self.dense_bytes / stage.bytes,
                "ratio_alexnet": ALEXNET_DENSE_BYTES / stage.bytes,
            }
            for stage in self.stages
        ]
        return {
            "model": self.model_name,
            "output": self.output,
            "policy": self.policy,
            "bits": self.bits,
            "file_bytes": self.file_bytes,
            "dense_bytes": self.dense_bytes,
            "alexnet_bytes": ALEXNET_DENSE_BYTES,
            "ratio_dense": self.dense_bytes / self.file_bytes,
            "ratio_alexnet": ALEXNET_DENSE_BYTES / self.file_bytes,
            "stages": stages,
            "layers": [
                {**dataclasses.asdict(row), "shape": list(row.shape)} for row in self.layers
            ],
            "seconds": self.seconds,
            "distill": self.distill,
        }


@dataclasses.dataclass
class CompressResult:
    """The compressed model in every form: module, plain data, bytes, and the report."""

    # Pruned + weight-shared (parametrized): what the file decodes to (float16 codebooks:
    # up to their rounding).
    model: nn.Module
    compressed: CompressedModel
    data: bytes  # the .sqz file
    report: CompressReport
    prune: PruneReport | None = None
    quantize: QuantizeReport | None = None


def compress_model(
    loaded: LoadedModel, config: CompressConfig, *, distill: Distiller | None = None
) -> CompressResult:
    """Prune, share and encode ``loaded.model`` in place (Deep Compression Sec. 2-4).

    Args:
        loaded: a model with its registry name, preprocessing and class names
            (:func:`squeezenet.formats.weights.load_model`).
        config: the pruning policy, bit widths, k-means init and encoder options.
        distill: optional fine-tuning of the shared centroids,
            ``distill(student, teacher, preprocess)``, run after quantization with the
            uncompressed model as the teacher (see :data:`Distiller`).

    Returns:
        The weight-shared model (``loaded.model``, changed in place), its plain-data form, the
        encoded .sqz bytes and the report.
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 4)
        clock = now

    model = loaded.model
    teacher = copy.deepcopy(model).eval() if distill is not None else None
    prune_report = None
    if config.policy is not None:
        prune_(model, config.policy)
        prune_report = _zeros_as_pruned_(model)
    lap("prune")
    bits = config.bits if isinstance(config.bits, int) else dict(config.bits)
    quant = quantize_(model, bits, init=config.init, iters=config.iters, seed=config.seed)
    lap("quantize")
    distilled = None
    if distill is not None and teacher is not None:
        outcome = distill(model, teacher, loaded.preprocess)
        distilled = dict(outcome) if outcome is not None else {}
        lap("distill")
    cm = to_compressed(
        model,
        model_name=loaded.model_name,
        preprocess=loaded.preprocess,
        class_names=loaded.class_names,
    )
    lap("export")
    data = encode_sqz(
        cm, codec=config.codec, gap_bits=config.gap_bits, codebook_dtype=config.codebook_dtype
    )
    lap("encode")
    rows = _layer_rows(cm, quant)
    report = CompressReport(
        model_name=loaded.model_name,
        bits=describe_bits(config.bits),
        policy=describe_policy(config.policy),
        stages=stage_sizes(cm, len(data)),
        layers=rows,
        seconds=seconds,
        distill=distilled,
    )
    logger.info("compressed %s to %d bytes", loaded.model_name, len(data))
    return CompressResult(model, cm, data, report, prune_report, quant)


def _zeros_as_pruned_(model: nn.Module) -> PruneReport:
    """Fold weights that are already zero into the prune masks, so that weight sharing never
    makes a cluster of them: a policy amount below a layer's existing sparsity (the published
    weights) would otherwise keep some zeros as stored weights. Unmasked layers need nothing:
    :func:`quantize_` skips their zeros."""
    for _, module in weight_layers(model):
        if prune_mask_of(module) is not None:
            register_mask_(module, cast(torch.Tensor, module.weight).detach() != 0)
    return pruning_report(model)


def _layer_rows(cm: CompressedModel, quant: QuantizeReport) -> tuple[LayerRow, ...]:
    rmse = {row.name: row.rmse for row in quant.layers}
    return tuple(
        LayerRow(
            layer.name,
            tuple(layer.shape),
            len(layer.positions),
            layer.density,
            layer.bits,
            len(layer.codebook),
            rmse.get(layer.name, 0.0),
        )
        for layer in cm.layers
    )


def compress_file(
    source: str | Path,
    output: str | Path,
    config: CompressConfig,
    *,
    distill: Distiller | None = None,
) -> CompressResult:
    """:func:`compress_model` on a weights file (or .sqz), written atomically to ``output``.

    Raises:
        FileNotFoundError: ``source`` or the folder of ``output`` does not exist.
        ValueError: the model cannot be compressed as configured (the message says why).
    """
    output = Path(output)
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {output.parent}")
    clock = time.perf_counter()
    loaded = load_model(source)
    load_s = round(time.perf_counter() - clock, 4)
    result = compress_model(loaded, config, distill=distill)
    clock = time.perf_counter()
    atomic_write_bytes(output, result.data)
    report = result.report
    seconds = {"load": load_s, **report.seconds, "write": round(time.perf_counter() - clock, 4)}
    result.report = dataclasses.replace(report, seconds=seconds, output=str(output))
    return result


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """What :func:`import_caffe_dc` or :func:`decompress_sqz` wrote."""

    source: str
    output: str
    model_name: str
    config: dict[str, Any]
    layers: int  # compressed layers read
    weights: int  # weights in those layers
    stored: int  # of them, the stored (non-zero) ones
    params: int  # parameters of the rebuilt model
    output_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _save_dense(cm: CompressedModel, source: str | Path, output: str | Path) -> ConversionReport:
    model = from_compressed(cm)
    preprocess = Preprocess.from_dict(cm.preprocess) if cm.preprocess else None
    path = save_weights(
        model, output, model_name=cm.model_name, preprocess=preprocess, class_names=cm.class_names
    )
    return ConversionReport(
        source=str(source),
        output=str(path),
        model_name=cm.model_name,
        config=dict(cm.config),
        layers=len(cm.layers),
        weights=sum(layer.numel for layer in cm.layers),
        stored=sum(len(layer.positions) for layer in cm.layers),
        params=sum(p.numel() for p in model.parameters()),
        output_bytes=path.stat().st_size,
    )


def import_caffe_dc(source: str | Path, output: str | Path) -> ConversionReport:
    """The published Caffe Deep Compression file -> a weights file, atomically.

    The result is ``squeezenet1_0`` with ``final_conv_padding=1``, the Caffe preprocessing and
    the ImageNet-1k class names (see :func:`squeezenet.formats.read_caffe_dc`).

    Raises:
        FileNotFoundError: no such file.
        CaffeDCFormatError: the bytes are not the published layout (names layer and offset).
    """
    if not Path(source).is_file():
        raise FileNotFoundError(f"Caffe Deep Compression file not found: {source}")
    return _save_dense(read_caffe_dc(source), source, output)


def decompress_sqz(source: str | Path, output: str | Path) -> ConversionReport:
    """A .sqz file -> a dense weights file (the decoded weights, bit for bit), atomically.

    Raises:
        FileNotFoundError: no such file.
        SqzFormatError: the file is damaged (the message names the field and byte offset).
    """
    if not Path(source).is_file():
        raise FileNotFoundError(f".sqz file not found: {source}")
    return _save_dense(read_sqz(source), source, output)
