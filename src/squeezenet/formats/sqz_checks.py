"""The encoder's checks of a model's grids (docs/FORMAT.md section 4a): every grid valid and
equal to its layer's weights, every bias grid to its layer's bias, bit for bit."""

from __future__ import annotations

import numpy as np

from squeezenet.formats import spec
from squeezenet.formats.grid import GridCode, dq_quantizers_many
from squeezenet.formats.model import CompressedLayer


def check_grids(layers: list[CompressedLayer]) -> None:
    """Every grid is valid and equals its layer's weights bit for bit (one state-machine run
    for all dependent layers)."""
    grids = [(i, layer) for i, layer in enumerate(layers) if layer.grid is not None]
    dependent = [
        (i, layer)
        for i, layer in grids
        if layer.grid.quantizer == spec.QUANTIZER_DEPENDENT  # type: ignore[union-attr]
    ]
    states = dq_quantizers_many(
        [layer.grid.levels for _, layer in dependent],  # type: ignore[union-attr]
        [layer.grid.period_log2 for _, layer in dependent],  # type: ignore[union-attr]
    )
    quantizers = {i: q for (i, _), q in zip(dependent, states, strict=True)}
    for i, layer in grids:
        grid = layer.grid
        assert grid is not None
        what = f"encode_sqz: layer {i} ({layer.name!r}) grid"
        step = np.float32(grid.step)
        if grid.quantizer not in (spec.QUANTIZER_UNIFORM, spec.QUANTIZER_DEPENDENT):
            raise ValueError(f"{what}: quantizer must be 0 or 1, got {grid.quantizer}")
        if not (np.isfinite(step) and step > 0 and float(step) == grid.step):
            raise ValueError(f"{what}: step must be a finite float32 > 0, got {grid.step}")
        if not spec.MIN_STATE_PERIOD_LOG2 <= grid.period_log2 <= spec.MAX_STATE_PERIOD_LOG2:
            raise ValueError(
                f"{what}: period_log2 must be in {spec.MIN_STATE_PERIOD_LOG2}.."
                f"{spec.MAX_STATE_PERIOD_LOG2}, got {grid.period_log2}"
            )
        if np.shape(grid.levels) != (layer.numel,):
            raise ValueError(f"{what}: levels must be flat with {layer.numel} entries")
        values = grid.values(quantizers.get(i))
        if not np.array_equal(
            values.view(np.uint32), layer.dense_weight().reshape(-1).view(np.uint32)
        ):
            raise ValueError(f"{what}: its values differ from the layer's weights")


def check_bias_grid(what: str, layer: CompressedLayer) -> GridCode:
    """``layer``'s bias grid (version 4) if it is uniform, its step a float32 > 0 and its
    values the layer's bias bit for bit.

    Raises:
        ValueError: it is not (the message starts with ``encode_sqz: {what}``).
    """
    grid = layer.bias_grid
    assert grid is not None and layer.bias is not None
    step = np.float32(grid.step)
    if grid.quantizer != spec.QUANTIZER_UNIFORM:
        raise ValueError(f"encode_sqz: {what} bias grid must be uniform (quantizer 0)")
    if not (np.isfinite(step) and step > 0 and float(step) == grid.step):
        raise ValueError(f"encode_sqz: {what} bias step must be a finite float32 > 0")
    if np.shape(grid.levels) != (layer.shape[0],) or not np.array_equal(
        grid.values().view(np.uint32), np.asarray(layer.bias, np.float32).view(np.uint32)
    ):
        raise ValueError(f"encode_sqz: {what} bias grid differs from the layer's bias")
    return grid
