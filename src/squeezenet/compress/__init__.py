"""Deep Compression: pruning, trained quantization (weight sharing), export to plain data.

Members are imported on first use, so light submodules never load torch through here.
"""

from typing import TYPE_CHECKING

from squeezenet._lazy import lazy_exports

if TYPE_CHECKING:
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

_MEMBERS = {
    "from_compressed": "export",
    "to_compressed": "export",
    "LayerPruning": "prune",
    "PruneMask": "prune",
    "PrunePolicy": "prune",
    "PruneReport": "prune",
    "get_masks": "prune",
    "layer_aliases": "prune",
    "parse_prune_policy": "prune",
    "prune_": "prune",
    "pruning_report": "prune",
    "remove_pruning_": "prune",
    "LayerQuantization": "quantize",
    "QuantizeReport": "quantize",
    "WeightShare": "quantize",
    "centroid_parameters": "quantize",
    "kmeans1d": "quantize",
    "quantize_": "quantize",
    "remove_quantization_": "quantize",
    "CompressedLayer": "types",
    "CompressedModel": "types",
}
__getattr__, __dir__ = lazy_exports(__name__, _MEMBERS)
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
