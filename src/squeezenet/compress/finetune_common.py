"""What distillation and reconstruction share: the weight-shared student's trainable values,
the distillation loss, the proxy KL monitor, and a context that freezes everything else."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from squeezenet.compress.proxy_sampler import ProxySampler
from squeezenet.compress.prune import weight_layers
from squeezenet.compress.weight_sharing import WeightShare, centroids_of, weight_share_of
from squeezenet.errors import ConfigError

# "step+bias": grid (trellis-coded) layers, whose levels stay and whose step and bias move.
Train = Literal["centroids", "centroids+bias", "step+bias"]
TRAINS: tuple[str, ...] = ("centroids", "centroids+bias", "step+bias")


def shared_layers(model: nn.Module) -> list[tuple[str, nn.Module, WeightShare]]:
    """The weight-shared layers of ``model`` (prefix, module, parametrization), in order."""
    rows = []
    for name, module in weight_layers(model):
        share = weight_share_of(module)
        if share is not None:
            rows.append((name, module, share))
    if not rows:
        raise ConfigError(
            "the student has no weight-shared layer: call quantize_(student) first, with bit "
            "widths (--bits) that match its layers"
        )
    return rows


def trainable_params(student: nn.Module, train: Train) -> list[nn.Parameter]:
    """The centroid tensors (with ``step+bias`` too: autograd reaches the steps through them)
    and, unless ``train == "centroids"``, the shared layers' biases."""
    out = []
    for _, module, _ in shared_layers(student):
        out.append(centroids_of(module))
        bias = getattr(module, "bias", None)
        if train != "centroids" and isinstance(bias, nn.Parameter):
            out.append(bias)
    return out


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, t: float, kind: str) -> torch.Tensor:
    """Mean over the batch: KL(softmax(teacher / t) || softmax(student / t)) * t^2, or MSE."""
    s, q = student.float(), teacher.float()
    if kind == "mse":
        return F.mse_loss(s, q)
    log_p, log_q = F.log_softmax(q / t, dim=1), F.log_softmax(s / t, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * (t * t)


@torch.no_grad()
def proxy_kl(
    student: nn.Module, teacher: nn.Module, sampler: ProxySampler, images: int, seed: int
) -> float:
    """Mean KL(teacher || student) at T = 1 over ``images`` fixed proxy images (NaN if 0)."""
    total, seen = 0.0, 0
    for x in sampler.batches(images, 64, seed):
        total += float(kd_loss(student(x), teacher(x), 1.0, "kl")) * len(x)
        seen += len(x)
    return total / seen if seen else float("nan")


class Frozen:
    """Context: both models in eval mode, only ``trained`` requires grad; all restored after."""

    def __init__(self, student: nn.Module, teacher: nn.Module, trained: list[nn.Parameter]):
        self.models = (student, teacher)
        self.trained = {id(p) for p in trained}
        self.params = list(student.parameters())

    def __enter__(self) -> None:
        self.modes = [m.training for m in self.models]
        self.grads = [p.requires_grad for p in self.params]
        for model in self.models:
            model.eval()  # dropout off, batch-norm statistics fixed
        for p in self.params:
            p.requires_grad_(id(p) in self.trained)

    def __exit__(self, *exc: object) -> None:
        for model, mode in zip(self.models, self.modes, strict=True):
            model.train(mode)
        for p, grad in zip(self.params, self.grads, strict=True):
            p.requires_grad_(grad)
