"""Layer-wise output reconstruction of a weight-shared student (post-training quantization with
little data: bias correction, Nagel et al. 2019; AdaQuant, Hubara et al. 2021).

Layer by layer, the centroids and bias that minimise the squared error between the student
layer's output on the student's own input and the teacher layer's output. The output is linear
in (centroids, bias), so each layer is an exact least-squares problem of K + out unknowns,
solved in closed form from second moments of the proxy activations. Only centroids and biases
change; assignments and pruned zeros never do. With ``train="step+bias"`` the layers are grid
layers (trellis-coded) and only their step and bias move (:mod:`squeezenet.compress.grid_fit`),
so the file keeps its grids and its size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from squeezenet.arch.preprocess import Preprocess
from squeezenet.compress.finetune_common import TRAINS, Frozen, Train, proxy_kl, shared_layers
from squeezenet.compress.grid_fit import GridMoments, accumulate_grid, grid_of, solve_grid_
from squeezenet.compress.proxy_sampler import ProxyConfig, ProxyData, ProxySampler, field_error
from squeezenet.compress.shared_fit import SharedMoments, accumulate_shared, solve_shared_

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconstructConfig:
    """Layer-wise output reconstruction of a weight-shared student (:func:`reconstruct_`)."""

    images: int = 1024  # proxy images whose activations define each layer's problem
    batch_size: int = 64  # images per forward pass
    # The bias absorbs the mean error (bias correction). "step+bias": grid layers keep their
    # levels, and only the step (one scale per layer) and the bias move.
    train: Train = "centroids+bias"
    # Levenberg-Marquardt damping towards the current values, relative to each unknown's own
    # curvature: directions the proxies barely excite (fine detail that blurry upscaled
    # images lack) stay near the k-means solution instead of being fitted to noise.
    ridge: float = 1e-3
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    monitor_images: int = 256  # fixed proxy images for the KL before/after (0: skip)
    seed: int = 0  # proxy sampling
    device: str = "cpu"  # both models are moved here

    def __post_init__(self) -> None:
        for name in ("images", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise field_error("ReconstructConfig", name, "an integer >= 1", getattr(self, name))
        if self.train not in TRAINS:
            raise field_error("ReconstructConfig", "train", " or ".join(TRAINS), self.train)
        if not self.ridge >= 0:
            raise field_error("ReconstructConfig", "ridge", "a number >= 0", self.ridge)
        if self.monitor_images < 0:
            raise field_error("ReconstructConfig", "monitor_images", ">= 0", self.monitor_images)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LayerReconstruction:
    """One layer of a :class:`ReconstructReport`; errors of the pre-activation output on the
    proxy activations, relative = squared error / squared teacher output."""

    name: str
    mse_before: float
    mse_after: float
    relative_before: float
    relative_after: float


@dataclass(frozen=True)
class ReconstructReport:
    """Outcome of :func:`reconstruct_` (KL as in :class:`DistillReport`)."""

    layers: tuple[LayerReconstruction, ...]
    images: int
    seconds: float
    kl_before: float
    kl_after: float
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _StopForwardError(Exception):
    """Raised by a hook to end a forward pass once the wanted activations are captured."""


def reconstruct_(
    student: nn.Module,
    teacher: nn.Module,
    proxy_data: ProxyData,
    preprocess: Preprocess,
    config: ReconstructConfig,
    *,
    callback: Callable[[LayerReconstruction], None] | None = None,
) -> ReconstructReport:
    """Refit each shared layer's centroids (and bias) to the teacher's layer output, in order.

    For layer l with fixed assignment, the student output ``W(c) x_s + b`` is linear in the
    centroids c and bias b; they are set to minimise ``sum ||W(c) x_s + b - y_t||^2`` over the
    proxy images, where ``x_s`` is the student's input to the layer (the earlier layers already
    refitted, so upstream error is compensated) and ``y_t`` the teacher layer's pre-activation
    output. Layers fed the same tensor (a Fire module's two expand layers) share one pass.

    Args:
        student: a weight-shared model (:func:`~squeezenet.compress.quantize_`), changed in place.
        teacher: the uncompressed model with the same layer names. Never changed.
        proxy_data: unlabeled images, never the evaluation images.
        preprocess: the models' input pipeline (``crop`` sets the proxy size).
        config: see :class:`ReconstructConfig`; both models are moved to ``config.device``.
        callback: called with each layer's result.

    Raises:
        ValueError: no shared layer, a layer missing from the teacher, or a layer type the
            closed form does not cover (grouped or non-zero-padded convolutions).
    """
    device = torch.device(config.device)
    student.to(device)
    teacher.to(device)
    layers = shared_layers(student)
    teacher_modules = dict(teacher.named_modules())
    for name, module, _ in layers:
        _check_layer(name, module, teacher_modules.get(name))
        if config.train == "step+bias" and grid_of(module) is None:
            raise ValueError(
                f"reconstruct_: {name} is not a grid layer; train='step+bias' needs "
                "trellis-coded layers (trellis_quantize_)"
            )
    sampler = ProxySampler(proxy_data, preprocess, config.proxy, device=device)
    monitor_seed = config.seed + 1_000_003
    clock = time.perf_counter()
    with Frozen(student, teacher, []), torch.no_grad():
        kl_before = proxy_kl(student, teacher, sampler, config.monitor_images, monitor_seed)
        names = [name for name, _, _ in layers]
        rows = _refit_layers_(student, teacher, names, sampler, config, callback)
        kl_after = proxy_kl(student, teacher, sampler, config.monitor_images, monitor_seed)
    seconds = time.perf_counter() - clock
    logger.info("reconstructed %d layers in %.1f s", len(rows), seconds)
    return ReconstructReport(
        tuple(rows), config.images, round(seconds, 3), kl_before, kl_after, config.to_dict()
    )


def _refit_layers_(
    student: nn.Module,
    teacher: nn.Module,
    names: list[str],
    sampler: ProxySampler,
    config: ReconstructConfig,
    callback: Callable[[LayerReconstruction], None] | None,
) -> list[LayerReconstruction]:
    """Refit the layers ``names`` in call order, one pass over the proxies per input group.

    Layer after layer, never all from one pass: refitted together, every layer would make up
    for the same upstream error and the model overshoots (measured: proxy KL 0.04 -> 1.7)."""
    rows: list[LayerReconstruction] = []
    modules = dict(student.named_modules())
    probe = next(sampler.batches(2, 2, config.seed))
    solve = _solve_grid_layer_ if config.train == "step+bias" else _solve_layer_
    for group in _input_groups(student, names, probe):
        moments = _collect(student, teacher, group, sampler, config)
        for name in group:
            rows.append(solve(name, modules[name], moments[name], config))
            if callback is not None:
                callback(rows[-1])
    return rows


def _check_layer(name: str, module: nn.Module, reference: nn.Module | None) -> None:
    kind = nn.Conv2d if isinstance(module, nn.Conv2d) else nn.Linear
    shape = tuple(cast(torch.Tensor, module.weight).shape)
    if not isinstance(reference, kind) or tuple(reference.weight.shape) != shape:
        raise ValueError(
            f"reconstruct_: the teacher has no {kind.__name__} {name!r} of weight shape "
            f"{shape}; the teacher must be the student's uncompressed model"
        )
    if isinstance(module, nn.Conv2d) and (
        module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str)
    ):
        raise ValueError(
            f"reconstruct_: {name} is a grouped, non-zero-padded or 'same'-padded convolution; "
            "only plain convolutions and linear layers are supported"
        )


def _input_groups(student: nn.Module, names: list[str], probe: torch.Tensor) -> list[list[str]]:
    """The layers in call order, grouped when consecutive layers receive the same tensor."""
    seen: dict[str, torch.Tensor] = {}
    order: list[str] = []
    modules = dict(student.named_modules())

    def hook(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def record(module: nn.Module, args: tuple[Any, ...]) -> None:
            if name in seen:
                raise ValueError(f"reconstruct_: {name} runs more than once in a forward pass")
            seen[name] = args[0]  # kept alive: identity of tensors is meaningful
            order.append(name)

        return record

    handles = [modules[name].register_forward_pre_hook(hook(name)) for name in names]
    try:
        student(probe)
    finally:
        for handle in handles:
            handle.remove()
    for name in sorted(set(names) - set(order)):
        logger.warning("reconstruct_: %s is not used by the forward pass; left as it is", name)
    groups: list[list[str]] = []
    for name in order:
        if groups and seen[name] is seen[groups[-1][0]]:
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def _collect(
    student: nn.Module,
    teacher: nn.Module,
    names: list[str],
    sampler: ProxySampler,
    config: ReconstructConfig,
) -> dict[str, Any]:
    """Moments of the student's input patches (grid layers: of its output without bias) and the
    teacher's outputs for the layers ``names`` (in call order), from one pass over the proxies
    that stops after the last of them."""
    student_modules = dict(student.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    captured: dict[str, torch.Tensor] = {}
    moments: dict[str, Any] = {}
    accumulate = accumulate_grid if config.train == "step+bias" else accumulate_shared
    handles = _capture_hooks(student, teacher, names, captured, outputs)
    try:
        for x in sampler.batches(config.images, config.batch_size, config.seed):
            captured.clear()
            for model in (teacher, student):
                with contextlib.suppress(_StopForwardError):
                    model(x)
            for name in names:
                accumulate(moments, name, student_modules[name], captured[name], outputs[name])
    finally:
        for handle in handles:
            handle.remove()
    return moments


def _capture_hooks(
    student: nn.Module,
    teacher: nn.Module,
    names: list[str],
    inputs: dict[str, torch.Tensor],
    outputs: dict[str, torch.Tensor],
) -> list[Any]:
    """Hooks that keep each layer's student input and teacher output, and end either forward
    pass once the last layer of ``names`` has been reached."""

    def keep_output(name: str) -> Callable[[nn.Module, tuple[Any, ...], torch.Tensor], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
            outputs[name] = out.clone()  # before an in-place ReLU overwrites it
            if name == names[-1]:
                raise _StopForwardError

        return hook

    def keep_input(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            inputs[name] = args[0]
            if name == names[-1]:
                raise _StopForwardError

        return hook

    student_modules, teacher_modules = dict(student.named_modules()), dict(teacher.named_modules())
    handles = [teacher_modules[n].register_forward_hook(keep_output(n)) for n in names]
    return handles + [student_modules[n].register_forward_pre_hook(keep_input(n)) for n in names]


def _solve_layer_(
    name: str, module: nn.Module, m: SharedMoments, config: ReconstructConfig
) -> LayerReconstruction:
    """A codebook layer's centroids and bias (:func:`.shared_fit.solve_shared_`)."""
    train_bias = config.train == "centroids+bias"
    before, after, total = solve_shared_(name, module, m, config.ridge, train_bias=train_bias)
    n, total = max(m.rows * len(m.yy), 1), max(total, 1e-300)
    return LayerReconstruction(name, before / n, after / n, before / total, after / total)


def _solve_grid_layer_(
    name: str, module: nn.Module, m: GridMoments, config: ReconstructConfig
) -> LayerReconstruction:
    """The grid layer's step scale and bias (:func:`squeezenet.compress.grid_fit.solve_grid_`)."""
    before, after, total = solve_grid_(module, m, config.ridge)
    n, total = max(m.rows * len(m.y if m.y is not None else ()), 1), max(total, 1e-300)
    return LayerReconstruction(name, before / n, after / n, before / total, after / total)
