"""What proxy images do for a compression: ``--calib`` weighs the weight errors of a rate
quantizer (per-layer scales or per-weight activation importance) and corrects grid layers'
biases; ``--distill`` fine-tunes the shared weights to the uncompressed model's outputs.

Both take their images from :mod:`squeezenet.data.proxy_images` (the training split of an
in-memory image set, never evaluation images) and return what
:func:`squeezenet.workflows.compress_file.compress_model` takes: scales, importance, a hook.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from squeezenet.arch.preprocess import Preprocess
from squeezenet.compress.bias_correct import correct_bias_
from squeezenet.compress.config import CompressConfig, Distiller, calib_weighting
from squeezenet.compress.distill import (
    GRID_REFIT,
    KD_GRID_RECIPE,
    KD_RECIPE,
    DistillProgress,
    distiller,
)
from squeezenet.compress.proxy_sampler import ProxyConfig, ProxySampler
from squeezenet.compress.sequential import Sequential, SequentialConfig, stages_of, walk_scales
from squeezenet.compress.trellis import feedback_factor
from squeezenet.compress.weighting import (
    HessianConfig,
    ImportanceConfig,
    InputStats,
    ScalesConfig,
    importance_from,
    input_hessians,
    input_statistics,
    layer_scales,
)
from squeezenet.data.datasets import ArrayDataset
from squeezenet.data.proxy_images import proxy_arrays
from squeezenet.errors import InputError
from squeezenet.io.weights import LoadedModel


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What ``--calib`` gives a rate-quantized model."""

    scales: dict[str, float] | None = None  # per-layer cost of a unit of squared error
    importance: dict[str, np.ndarray] | None = None  # per-weight error weights per layer
    correct: Distiller | None = None  # grid layers: the bias correction after quantization
    feedback: dict[str, np.ndarray] | None = None  # trellis: per-layer error feedback factors
    # trellis: sequential quantization (biases corrected inside: no ``correct``)
    sequential: Sequential | None = None
    # --bias grid: per layer, its bias step in units of its weights' grid step (bias_scales)
    bias_scales: dict[str, float] | None = None


# A bias step of BIAS_STEP_SCALE x the weights' grid step x the layer's RMS input: a bias error
# then weighs what an error of a quarter step on one weight with a typical input does, while a
# layer's output error sums one per stored weight. Chosen on the held-out proxies at fixed weights
# (decisions/bias_step.py; docs/RESULTS.md, "Stop 39"): at 1 the CIFAR-10 KL of a 340 KB file rose
# by a quarter, at 0.5 by 5 %, at 0.25 it did not move (0.00967 -> 0.00966, photographs 0.0476 ->
# 0.0473) and the levels need 1,559 bytes instead of 7,991 as float16.
BIAS_STEP_SCALE = 0.25


def input_rms(stats: InputStats) -> dict[str, float]:
    """Per layer, the RMS of its proxy inputs over every input channel and position."""
    return {name: float(v.mean().sqrt()) for name, v in stats.mean_square.items()}


def bias_scales(stats: InputStats) -> dict[str, float]:
    """Per layer, the bias step in units of its grid step: :data:`BIAS_STEP_SCALE` x
    :func:`input_rms`."""
    return {n: BIAS_STEP_SCALE * value for n, value in input_rms(stats).items() if value > 0}


def calibration_images(loaded: LoadedModel, data: str) -> ArrayDataset:
    """The unlabeled training split of dataset ``data`` (``--calib``): never evaluation images.

    Raises:
        InputError: the model has no preprocessing record, or ``data`` is not an in-memory set.
    """
    if loaded.preprocess is None:
        raise InputError(f"{loaded.path}: no preprocessing record, so proxy images cannot be made")
    return proxy_arrays(data, "--calib")


def proxy_scales(
    loaded: LoadedModel, data: str, *, images: int = 128, seed: int = 0
) -> dict[str, float]:
    """Per-layer KL per unit of squared weight error
    (:func:`squeezenet.compress.weighting.layer_scales`) on the unlabeled training split of
    dataset ``data`` (:func:`calibration_images`)."""
    proxy = calibration_images(loaded, data)
    assert loaded.preprocess is not None
    sampler = ProxySampler(proxy, loaded.preprocess, ProxyConfig(), channels_last=True)
    return layer_scales(loaded.model, sampler, ScalesConfig(images=images, seed=seed))


def proxy_input_stats(loaded: LoadedModel, data: str, *, seed: int = 0) -> InputStats:
    """Every layer's input-channel moments
    (:func:`squeezenet.compress.weighting.input_statistics`) on 2x2 mosaics of dataset
    ``data``'s training split: what the activation weighting and the bias correction of
    ``--calib`` need, in one pass."""
    return input_statistics(loaded.model, _mosaics(loaded, data), ImportanceConfig(seed=seed))


def calibrate(loaded: LoadedModel, config: CompressConfig, data: str) -> Calibration:
    """``--calib data`` for a rate-quantized ``config``: per-layer scales or per-weight
    importance (``config.weighting``) and, for grid quantizers, a bias-correction hook (run after
    quantization, in place of distillation); with ``--bias grid`` each layer's bias step scale
    (:func:`bias_scales`)."""
    measured: list[InputStats] = []

    def stats() -> InputStats:  # one proxy pass, shared by whatever needs the input moments
        if not measured:
            measured.append(proxy_input_stats(loaded, data, seed=config.seed))
        return measured[0]

    found = _calibrate(loaded, config, data, stats)
    if config.bias_dtype != "grid":
        return found
    return dataclasses.replace(found, bias_scales=bias_scales(stats()))


def _calibrate(
    loaded: LoadedModel, config: CompressConfig, data: str, stats: Callable[[], InputStats]
) -> Calibration:
    grid = config.quantizer_in_use().grid
    if calib_weighting(config) == "layer":
        scales = proxy_scales(loaded, data, seed=config.seed)
        if not grid:
            return Calibration(scales=scales)
        return Calibration(scales=scales, correct=bias_corrector(stats()))
    if calib_weighting(config) == "sequential":
        stages_of(loaded.model)  # refuse a model it cannot walk before measuring anything
    if calib_weighting(config) in ("hessian", "sequential"):
        hessians = proxy_hessians(loaded, data, HessianConfig(seed=config.seed))
        feedback = {name: feedback_factor(h, HessianConfig.damping) for name, h in hessians.items()}
        if calib_weighting(config) == "sequential":  # feedback: the byte search's stand-in,
            walk = Sequential(_mosaics(loaded, data), SequentialConfig(seed=config.seed))
            scales = walk_scales(loaded.model, walk.config)  # its rates as the walk's
            return Calibration(scales=scales, feedback=feedback, sequential=walk)
        return Calibration(feedback=feedback, correct=bias_corrector(stats()))
    moments = stats()
    return Calibration(
        importance=importance_from(loaded.model, moments), correct=bias_corrector(moments)
    )


def proxy_hessians(
    loaded: LoadedModel, data: str, config: HessianConfig = HessianConfig()
) -> dict[str, np.ndarray]:
    """Every layer's input covariance (:func:`squeezenet.compress.weighting.input_hessians`)
    on 2x2 mosaics of dataset ``data``'s training split, the images of :func:`proxy_input_stats`."""
    return input_hessians(loaded.model, _mosaics(loaded, data, config.leaves), config)


def _mosaics(loaded: LoadedModel, data: str, leaves: float = 0.0) -> ProxySampler:
    """2x2 mosaics of dataset ``data``'s training split at ``loaded``'s input: the images of
    ``--calib``'s input statistics and Hessians; a fraction ``leaves`` of them dead leaves in
    the set's colours (:func:`squeezenet.compress.proxy_sampler.dead_leaves`)."""
    proxy = calibration_images(loaded, data)
    assert loaded.preprocess is not None
    config = ProxyConfig(mix="mosaic", leaves=leaves)
    return ProxySampler(proxy, loaded.preprocess, config, channels_last=True)


def bias_corrector(stats: InputStats) -> Distiller:
    """A distill hook (:data:`Distiller`) that folds each quantized layer's mean output error
    into its bias (:func:`squeezenet.compress.bias_correct.correct_bias_`), from the
    uncompressed model's input means ``stats``."""

    def run(student: nn.Module, teacher: nn.Module, _: Preprocess | None) -> dict[str, Any]:
        rows = correct_bias_(student, teacher, stats.mean)
        return {"bias_correction": {"images": stats.images, "layers": len(rows)}}

    return run


def proxy_distiller(
    data: str,
    config: CompressConfig,
    *,
    images: int | None = None,
    device: str = "cpu",
    callback: Callable[[DistillProgress], None] | None = None,
) -> Distiller:
    """The ``--distill data`` hook: the shared centroids (grid quantizers: each layer's step and
    bias, first refitted in closed form) fitted to the uncompressed model's outputs on the
    unlabeled training split of ``data`` (:mod:`squeezenet.compress.distill`).

    Args:
        images: proxy images seen (the budget); None: the recipe's (40,000; grid files 4,096).
        callback: receives the distillation's progress.

    Raises:
        InputError: ``data`` is not an in-memory image set.
    """
    proxy = proxy_arrays(data, "--distill")
    grid = config.quantizer_in_use().grid
    recipe = KD_GRID_RECIPE if grid else KD_RECIPE
    budget = recipe.images if images is None else images
    kd = dataclasses.replace(recipe, images=budget, seed=config.seed, device=device)
    refit = dataclasses.replace(GRID_REFIT, seed=config.seed, device=device) if grid else None
    return distiller(proxy, kd, reconstruct=refit, callback=callback)
