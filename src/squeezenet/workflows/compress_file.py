"""Deep Compression on files: load -> prune -> quantize -> (distill) -> encode -> write, reported.

Also the two file conversions around it: the published Caffe Deep Compression file -> weights
file, and ``.sqz`` -> weights file. Each returns a plain report; printing is the CLI's job.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from squeezenet.arch.config import SqueezeNetConfig
from squeezenet.arch.preprocess import Preprocess
from squeezenet.arch.registry import resolve_config
from squeezenet.atomic import atomic_write_bytes
from squeezenet.compress.calibrate import Calibration, calibrate, proxy_distiller
from squeezenet.compress.config import CompressConfig, Distiller, describe_bits, describe_policy
from squeezenet.compress.damage import Damage, assess, weights_before
from squeezenet.compress.distill import DistillProgress
from squeezenet.compress.plain_data import from_compressed, snap_biases_, to_compressed
from squeezenet.compress.prune import (
    PruneReport,
    prune_,
    prune_mask_of,
    pruning_report,
    register_mask_,
    weight_layers,
)
from squeezenet.compress.quantizers import QuantizeJob
from squeezenet.compress.rate import RateOutcome, quantize_to_rate_
from squeezenet.compress.sizes import stage_sizes
from squeezenet.compress.trellis import BIAS_SCALE_ATTRIBUTE
from squeezenet.compress.weight_sharing import QuantizeReport
from squeezenet.errors import ConfigError, MissingFileError
from squeezenet.formats.caffe_dc import read_caffe_dc
from squeezenet.formats.model import CompressedModel
from squeezenet.formats.sqz import encode_sqz, read_sqz
from squeezenet.io.weights import LoadedModel, save_weights
from squeezenet.runtime.model_file import ConversionReport, conversion_report, write_weights
from squeezenet.workflows.compress_report import CompressReport, Stopwatch, layer_rows
from squeezenet.workflows.load import load_any

logger = logging.getLogger(__name__)


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
    loaded: LoadedModel,
    config: CompressConfig,
    *,
    distill: Distiller | None = None,
    scales: Mapping[str, float] | None = None,
    importance: Mapping[str, np.ndarray] | None = None,
    feedback: Mapping[str, np.ndarray] | None = None,
    sequential: Callable[[nn.Module, float], QuantizeReport] | None = None,
    bias_scales: Mapping[str, float] | None = None,
) -> CompressResult:
    """Prune, share and encode ``loaded.model`` in place (Deep Compression Sec. 2-4).

    Args:
        loaded: a model with its name, preprocessing and classes (``load.load_any``).
        config: the pruning policy, bit widths, k-means init and encoder options.
        distill: optional fine-tuning after quantization, ``distill(student, teacher,
            preprocess)`` with the uncompressed model as the teacher (:data:`Distiller`).
        scales: with ``config.rate_lambda`` / ``target_bytes``: each layer's cost of a unit of
            squared weight error (:func:`squeezenet.compress.weighting.layer_scales`); None: equal.
        importance: with the trellis quantizer: per-weight error weights within each layer
            (:func:`squeezenet.compress.weighting.weight_importance`); None: equal.
        feedback: with the trellis quantizer: per layer, the error feedback factor of its input
            Hessian (:func:`squeezenet.compress.trellis.feedback_factor`); None: no feedback.
        sequential: with the trellis: quantize sequentially instead (``feedback`` then stands
            in for the byte search; :class:`squeezenet.compress.sequential.Sequential`).
        bias_scales: with ``config.bias_dtype`` "grid" (required then): per layer, its bias
            step in units of its grid step (:func:`squeezenet.compress.calibrate.bias_scales`).

    Raises:
        ConfigError: ``config.bias_dtype`` is "grid" without ``bias_scales``.

    Returns:
        The shared model (``loaded.model``, in place), its plain data, the .sqz bytes, the report.
    """
    watch = Stopwatch()
    model = loaded.model
    _bias_grid_(model, config, bias_scales)
    teacher = copy.deepcopy(model).eval() if distill is not None else None
    prune_report = _prune_stage_(model, config)
    watch.lap("prune")
    given = QuantizeJob(scales=scales, importance=importance, feedback=feedback)
    quant, rate, damage = _quantize_stage_(loaded, config, given, sequential)
    watch.lap("quantize")
    distilled = None
    if distill is not None and teacher is not None:
        outcome = distill(model, teacher, loaded.preprocess)
        distilled = dict(outcome) if outcome is not None else {}
        watch.lap("distill")
    cm = _export(loaded, model)
    snap_biases_(model, cm)
    watch.lap("export")
    data = _encode(cm, config)
    watch.lap("encode")
    report = _report(loaded, config, cm, len(data), quant, watch, distilled, rate, damage)
    logger.info("compressed %s to %d bytes", loaded.model_name, len(data))
    return CompressResult(model, cm, data, report, prune_report, quant)


def _report(
    loaded: LoadedModel,
    config: CompressConfig,
    cm: CompressedModel,
    size: int,
    quant: QuantizeReport,
    watch: Stopwatch,
    distilled: dict[str, object] | None,
    rate: RateOutcome | None,
    damage: Damage,
) -> CompressReport:
    return CompressReport(
        model_name=loaded.model_name,
        bits=describe_bits(config.bits),
        policy=describe_policy(config.policy),
        stages=stage_sizes(cm, size),
        layers=layer_rows(cm, quant),
        seconds=watch.seconds,
        distill=distilled,
        rate=rate.to_dict() if rate is not None else None,
        damage=damage.to_dict(),
        warnings=_wreck_warning(damage, config),
    )


def _quantize_stage_(
    loaded: LoadedModel,
    config: CompressConfig,
    given: QuantizeJob,
    sequential: Callable[[nn.Module, float], QuantizeReport] | None,
) -> tuple[QuantizeReport, RateOutcome | None, Damage]:
    """The configured quantizer (:mod:`squeezenet.compress.quantizers`), at a lambda or a byte
    target when it is a rate quantizer, and what it did to the weights it was given (pruning is
    the policy's doing, not counted). ``given``: the calibration's fields of the job."""
    before = weights_before(loaded.model)
    quantizer = config.quantizer_in_use()
    job = dataclasses.replace(
        given,
        sequential=sequential,
        bits=config.bits if isinstance(config.bits, int) else dict(config.bits),
        level_bits=(16 if config.codebook_dtype == "float16" else 32) + 5,  # entry + length
        init=config.init,
        iters=config.iters,
        seed=config.seed,
    )
    rate = None
    if not quantizer.rate:
        quant = quantizer.quantize_(loaded.model, job)
    else:
        quant, rate = quantize_to_rate_(
            loaded.model,
            lambda model: len(_encode(_export(loaded, model), config)),
            quantizer,
            job,
            rate_lambda=config.rate_lambda,
            target_bytes=config.target_bytes,
            advice="" if config.codec == "auto" else " or use --codec auto",
        )
    return quant, rate, assess(before, loaded.model, given.importance)


def _bias_grid_(
    model: nn.Module, config: CompressConfig, scales: Mapping[str, float] | None
) -> None:
    """With ``--bias grid``: each layer's bias step scale, left on the module for the export."""
    if config.bias_dtype != "grid":
        return
    if scales is None:
        raise ConfigError(
            "--bias grid sets each bias step from the layer's proxy inputs: add --calib DATA "
            "(e.g. --calib cifar10)"
        )
    for name, module in weight_layers(model):
        if name in scales:
            setattr(module, BIAS_SCALE_ATTRIBUTE, float(scales[name]))


def _export(loaded: LoadedModel, model: nn.Module) -> CompressedModel:
    """``model`` (a quantized ``loaded.model`` or a copy of it) as plain data."""
    return to_compressed(
        model,
        model_name=loaded.model_name,
        preprocess=loaded.preprocess,
        class_names=loaded.class_names,
    )


def _wreck_warning(damage: Damage, config: CompressConfig) -> tuple[str, ...]:
    """The warning of a compression that wrecks the model (:mod:`squeezenet.compress.damage`);
    with a byte target the rate search has already refused that."""
    reasons = damage.reasons()
    if not reasons:
        return ()
    more = f" and {len(reasons) - 1} more" if len(reasons) > 1 else ""
    fix = "raise --bits" if config.rate_lambda is None else "lower --rate-lambda"
    return (f"this quantization wrecks the model ({reasons[0]}{more}): {fix}",)


def _encode(cm: CompressedModel, config: CompressConfig) -> bytes:
    return encode_sqz(
        cm,
        codec=config.codec,
        gap_bits=config.gap_bits,
        codebook_dtype=config.codebook_dtype,
        bias_dtype="float16" if config.bias_dtype == "grid" else config.bias_dtype,
    )


def _prune_stage_(model: nn.Module, config: CompressConfig) -> PruneReport | None:
    """``config.policy`` applied to ``model`` (None: nothing pruned, no report)."""
    if config.policy is None:
        return None
    prune_(model, config.policy)
    return _zeros_as_pruned_(model)


def _zeros_as_pruned_(model: nn.Module) -> PruneReport:
    """Fold weights that are already zero into the prune masks, so that weight sharing never
    makes a cluster of them: a policy amount below a layer's existing sparsity (the published
    weights) would otherwise keep some zeros as stored weights. Unmasked layers need nothing:
    :func:`quantize_` skips their zeros."""
    for _, module in weight_layers(model):
        if prune_mask_of(module) is not None:
            register_mask_(module, cast(torch.Tensor, module.weight).detach() != 0)
    return pruning_report(model)


def compress_file(
    source: str | Path,
    output: str | Path,
    config: CompressConfig,
    *,
    distill: Distiller | None = None,
    calib: str | None = None,
    distill_data: str | None = None,
    distill_images: int | None = None,
    device: str = "cpu",
    on_distill: Callable[[DistillProgress], None] | None = None,
) -> CompressResult:
    """:func:`compress_model` on a weights file (or .sqz), written atomically to ``output``.

    ``calib``: with a rate, the dataset whose unlabeled training images weigh the weight errors
    (``config.weighting``: per-weight activation importance or per-layer scales); with a grid
    quantizer (the trellis) their input means also correct each layer's bias after quantization
    (:mod:`squeezenet.compress.bias_correct`) when no distillation is asked for. None weighs
    every error alike and corrects nothing. ``distill_data``: the dataset whose unlabeled
    training images distil the shared weights (``distill_images`` of them, on ``device``;
    ``on_distill`` sees the progress), built by
    :func:`squeezenet.compress.calibrate.proxy_distiller`; ``distill``: a hook of your own
    instead. Both image sets come from :mod:`squeezenet.data.proxy_images`.

    Raises:
        MissingFileError: ``source`` or the folder of ``output`` does not exist.
        ConfigError: the model cannot be compressed as configured (the message says why).
    """
    output = Path(output)
    _check_request(output, config, calib)
    watch = Stopwatch()
    loaded = load_any(source)
    load_s = watch.lap("load")
    if distill is None and distill_data is not None:
        distill = proxy_distiller(
            distill_data, config, images=distill_images, device=device, callback=on_distill
        )
    calibration = Calibration()
    if calib is not None and config.has_rate:
        calibration = calibrate(loaded, config, calib)
        distill = distill or calibration.correct
    result = compress_model(
        loaded,
        config,
        distill=distill,
        scales=calibration.scales,
        importance=calibration.importance,
        feedback=calibration.feedback,
        sequential=calibration.sequential,
        bias_scales=calibration.bias_scales,
    )
    watch.restart()
    atomic_write_bytes(output, result.data)
    seconds = {"load": load_s, **result.report.seconds, "write": watch.lap("write")}
    result.report = dataclasses.replace(result.report, seconds=seconds, output=str(output))
    return result


def _check_request(output: Path, config: CompressConfig, calib: str | None) -> None:
    """What :func:`compress_file` refuses before reading anything (its ``Raises``)."""
    if not output.parent.is_dir():
        raise MissingFileError(f"output folder not found: {output.parent}; create it first")
    if config.bias_dtype == "grid" and calib is None:
        raise ConfigError(
            "--bias grid sets each bias step from the layer's proxy inputs: add --calib DATA "
            "(e.g. --calib cifar10)"
        )
    if config.weighting is not None and calib is None:  # it would be ignored without a word
        raise ConfigError(
            f"--weighting {config.weighting} weighs errors on proxy images; add --calib DATA "
            "(e.g. --calib cifar10)"
        )


def write_dense(cm: CompressedModel, source: str | Path, output: str | Path) -> ConversionReport:
    """The decoded weights of ``cm`` as a weights file, checked against the model first."""
    config = resolve_config(cm.model_name, **cm.config)
    if isinstance(config, SqueezeNetConfig):  # torch-free: the runtime writes it
        return write_weights(cm, source, output)
    model = from_compressed(cm)
    preprocess = Preprocess.from_dict(cm.preprocess) if cm.preprocess else None
    path = save_weights(
        model, output, model_name=cm.model_name, preprocess=preprocess, class_names=cm.class_names
    )
    return conversion_report(cm, source, path, sum(p.numel() for p in model.parameters()))


def import_caffe_dc(source: str | Path, output: str | Path) -> ConversionReport:
    """The published Caffe Deep Compression file -> a weights file, atomically.

    The result is ``squeezenet1_0`` with ``final_conv_padding=1``, the Caffe preprocessing and
    the ImageNet-1k class names (see :func:`squeezenet.formats.read_caffe_dc`).

    Raises:
        FileNotFoundError: no such file.
        CaffeDCFormatError: the bytes are not the published layout (names layer and offset).
    """
    if not Path(source).is_file():
        raise MissingFileError(f"Caffe Deep Compression file not found: {source}")
    return write_dense(read_caffe_dc(source), source, output)


def decompress_sqz(source: str | Path, output: str | Path) -> ConversionReport:
    """A .sqz file -> a dense weights file (the decoded weights, bit for bit), atomically.

    Raises:
        FileNotFoundError: no such file.
        SqzFormatError: the file is damaged (the message names the field and byte offset).
    """
    if not Path(source).is_file():
        raise MissingFileError(f".sqz file not found: {source}")
    return write_dense(read_sqz(source), source, output)
