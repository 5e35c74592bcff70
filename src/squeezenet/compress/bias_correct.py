"""Empirical bias correction: a quantized layer's mean output error folded into its bias.

Quantization changes a layer's weights by ``dW = Q - W``, so its output moves by ``dW x``. Its
expectation over the inputs, ``sum_i dW[o, i] * E[x_i]`` per output channel ``o`` (summed over
the kernel positions for a convolution), is a constant shift: subtracting it from the bias
removes the mean error for free (Nagel et al., "Data-Free Quantization", ICCV 2019, Sec. 4.2,
with the input means measured on proxy images). The means are the uncompressed model's, so one
pass over the proxies serves every layer; the correction runs in a second and changes neither
the weights nor, since biases are stored per channel anyway, the file size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from squeezenet.compress.prune import layer_names


@dataclass(frozen=True)
class BiasCorrection:
    """One layer of :func:`correct_bias_`: the RMS bias change against the RMS bias."""

    name: str
    rms_shift: float
    rms_bias: float


@torch.no_grad()
def correct_bias_(
    student: nn.Module, teacher: nn.Module, input_means: Mapping[str, torch.Tensor]
) -> list[BiasCorrection]:
    """Shift every biased conv / linear layer's bias of ``student`` by ``-(Q - W) E[x]``.

    Args:
        student: the quantized model (any weight sharing or grid), changed in place.
        teacher: the uncompressed model with the same layer names (its weights are ``W``).
        input_means: per layer prefix, the mean of each input channel of the *teacher's* layer
            on proxy images, shape ``(in,)``
            (:func:`squeezenet.compress.weighting.input_statistics`).
            Layers without an entry are left as they are.

    Returns:
        One row per corrected layer.
    """
    reference = dict(teacher.named_modules())
    rows = []
    for name, _, module in layer_names(student):
        bias = getattr(module, "bias", None)
        if name not in input_means or not isinstance(bias, torch.Tensor):
            continue
        q = cast(torch.Tensor, module.weight).detach().double()
        w = cast(torch.Tensor, reference[name].weight).detach().double()
        if q.shape != w.shape:
            raise ValueError(f"correct_bias_: {name} has shape {tuple(q.shape)} in the student "
                             f"and {tuple(w.shape)} in the teacher")  # fmt: skip
        delta = (q - w).reshape(q.shape[0], q.shape[1], -1).sum(2)  # (out, in)
        shift = delta @ input_means[name].to(delta)  # (out,)
        bias.sub_(shift.to(bias))
        rms = float(bias.double().square().mean().sqrt())
        rows.append(BiasCorrection(name, float(shift.square().mean().sqrt()), rms))
    return rows
