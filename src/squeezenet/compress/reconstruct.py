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
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from squeezenet.arch.preprocess import Preprocess
from squeezenet.compress.grid_fit import GridMoments, accumulate_grid, grid_of, solve_grid_
from squeezenet.compress.proxy import ProxyConfig, ProxyData, ProxySampler, field_error
from squeezenet.compress.quantize import centroids_of, weight_share_of
from squeezenet.compress.student import TRAINS, Frozen, Train, proxy_kl, shared_layers

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


@dataclass
class _Moments:
    """Sums over all output positions r: phi phi^T, phi y^T and y^2, phi = [input patch, 1]."""

    phi: torch.Tensor  # (D + 1, D + 1) float64
    cross: torch.Tensor  # (D + 1, O) float64
    yy: torch.Tensor  # (O,) float64
    rows: int = 0


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
    accumulate = accumulate_grid if config.train == "step+bias" else _accumulate
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


def _accumulate(
    moments: dict[str, _Moments], name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> None:
    """Add one batch: ``x`` the layer's input, ``y`` the teacher's output for it."""
    if isinstance(module, nn.Conv2d):
        d = x.shape[1] * module.weight.shape[2] * module.weight.shape[3]
        positions = y.shape[2] * y.shape[3]
    else:
        d, positions = x.shape[-1], 1
    chunk = max(1, (1 << 23) // ((d + 1) * positions))  # images per float64 block (~64 MB)
    for start in range(0, len(x), chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        if isinstance(module, nn.Conv2d):
            padding = cast(tuple[int, int], module.padding)  # not "same": _check_layer
            cols = F.unfold(xs, module.kernel_size, module.dilation, padding, module.stride)
            patches = cols.transpose(1, 2).reshape(-1, d)  # (n * P, D), P output positions
            targets = ys.permute(0, 2, 3, 1).reshape(-1, ys.shape[1])  # (n * P, O)
        else:
            patches, targets = xs.reshape(-1, d), ys.reshape(-1, ys.shape[-1])
        phi = torch.cat([patches, patches.new_ones(len(patches), 1)], 1).double()
        targets = targets.double()
        if name not in moments:
            moments[name] = _Moments(
                phi.new_zeros(d + 1, d + 1), phi.new_zeros(d + 1, targets.shape[1]),
                phi.new_zeros(targets.shape[1]),
            )  # fmt: skip
        m = moments[name]
        m.phi += phi.T @ phi
        m.cross += phi.T @ targets
        m.yy += targets.square().sum(0)
        m.rows += len(phi)


def _solve_layer_(
    name: str, module: nn.Module, m: _Moments, config: ReconstructConfig
) -> LayerReconstruction:
    """Solve the damped normal equations of one layer and write its centroids and bias."""
    share = weight_share_of(module)
    assert share is not None
    centroids = centroids_of(module)
    bias = getattr(module, "bias", None)
    k = share.num_centroids
    assignment = cast(torch.Tensor, share.assignment)
    a = assignment.reshape(assignment.shape[0], -1)  # (O, D), values in [0, k]
    z0 = centroids.detach().double()
    if isinstance(bias, torch.Tensor):
        z0 = torch.cat([z0, bias.detach().double()])
    big_a, r = _normal_equations(a, k, m, with_bias=isinstance(bias, torch.Tensor))
    free = z0.numel() if config.train == "centroids+bias" else k
    # Unknowns z[:free]; the rest (the bias, when not trained) stay at z0.
    rhs = r[:free] - big_a[:free, free:] @ z0[free:]
    sub = big_a[:free, :free]
    damp = config.ridge * sub.diagonal() + 1e-12 * float(sub.diagonal().max().clamp_min(1e-290))
    z = z0.clone()
    z[:free] = torch.linalg.solve(sub + torch.diag(damp), rhs + damp * z0[:free])

    def loss(v: torch.Tensor) -> float:
        return float(v @ big_a @ v - 2 * v @ r + m.yy.sum())

    before, after = loss(z0), loss(z)
    if not (math.isfinite(after) and after <= before):  # only rounding can get here
        scale = max(float(m.yy.sum()), 1e-300)
        logger.debug("reconstruct_: %s kept (%.3g -> %.3g)", name, before / scale, after / scale)
        z, after = z0, before
    with torch.no_grad():
        centroids.copy_(z[:k].to(centroids.dtype))
        if isinstance(bias, torch.Tensor):
            bias.copy_(z[k:].to(bias.dtype))
    n, total = max(m.rows * a.shape[0], 1), max(float(m.yy.sum()), 1e-300)
    return LayerReconstruction(name, before / n, after / n, before / total, after / total)


def _solve_grid_layer_(
    name: str, module: nn.Module, m: GridMoments, config: ReconstructConfig
) -> LayerReconstruction:
    """The grid layer's step scale and bias (:func:`squeezenet.compress.grid_fit.solve_grid_`)."""
    before, after, total = solve_grid_(module, m, config.ridge)
    n, total = max(m.rows * len(m.y if m.y is not None else ()), 1), max(total, 1e-300)
    return LayerReconstruction(name, before / n, after / n, before / total, after / total)


def _normal_equations(
    a: torch.Tensor, k: int, m: _Moments, *, with_bias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, r)`` with squared error = z^T A z - 2 z^T r + sum y^2, z = [centroids; bias].

    Row o of the weight reads ``c[a[o, d]]`` (``a == k``: pruned, reads 0), so
    ``A_cc[i, j] = sum_o sum_{d: a=i} sum_{e: a=j} S[d, e]`` with S the input second moments;
    it is accumulated by scatter-adding S once per output row (O * D^2 additions).
    """
    o, d = a.shape
    s, s1, count = m.phi[:d, :d], m.phi[:d, d], m.phi[d, d]
    width = k + 1  # bin k collects the pruned positions and is dropped
    acc = s.new_zeros(width * width)
    step = max(1, (1 << 23) // (d * d))
    for start in range(0, o, step):
        rows = a[start : start + step]  # (o', D)
        index = rows[:, :, None] * width + rows[:, None, :]  # (o', D, D)
        acc.index_add_(0, index.flatten(), s.expand(len(rows), d, d).flatten())
    a_cc = acc.view(width, width)[:k, :k]
    r_c = s.new_zeros(width).index_add_(0, a.flatten(), m.cross[:d].T.flatten())[:k]
    if not with_bias:
        return a_cc, r_c
    outputs = torch.arange(o, device=a.device)[:, None]
    a_cb = s.new_zeros(width * o).index_add_(0, (a * o + outputs).flatten(), s1.repeat(o))
    a_cb = a_cb.view(width, o)[:k]
    a_bb = torch.diag(count.expand(o))
    big_a = torch.cat([torch.cat([a_cc, a_cb], 1), torch.cat([a_cb.T, a_bb], 1)], 0)
    return big_a, torch.cat([r_c, m.cross[d]])
