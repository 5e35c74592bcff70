"""Deep Compression: pruning, trained quantization (weight sharing), export to plain data."""

from squeezenet.compress.export import from_compressed, to_compressed
from squeezenet.compress.prune import (
    LayerPruning,
    PruneMask,
    PrunePolicy,
    PruneReport,
    get_masks,
    layer_aliases,
    parse_prune_policy,
    prune_,
    pruning_report,
    remove_pruning_,
)
from squeezenet.compress.quantize import (
    LayerQuantization,
    QuantizeReport,
    WeightShare,
    centroid_parameters,
    kmeans1d,
    quantize_,
    remove_quantization_,
)
from squeezenet.compress.types import CompressedLayer, CompressedModel

__all__ = [
    "CompressedLayer",
    "CompressedModel",
    "LayerPruning",
    "LayerQuantization",
    "PruneMask",
    "PrunePolicy",
    "PruneReport",
    "QuantizeReport",
    "WeightShare",
    "centroid_parameters",
    "from_compressed",
    "get_masks",
    "kmeans1d",
    "layer_aliases",
    "parse_prune_policy",
    "prune_",
    "pruning_report",
    "quantize_",
    "remove_pruning_",
    "remove_quantization_",
    "to_compressed",
]
