"""Deep Compression and what followed it: pruning, weight sharing (k-means), entropy-constrained
scalar quantization (ECSQ), trellis-coded quantization, distillation and bias correction, the
rate search under a byte budget, and the export to plain data (``CompressedModel``)."""

from squeezenet.compress.config import CompressConfig
from squeezenet.compress.plain_data import from_compressed, to_compressed
from squeezenet.compress.prune import (
    LayerPruning,
    PruneMask,
    PruneReport,
    get_masks,
    layer_aliases,
    prune_,
    pruning_report,
    remove_pruning_,
)
from squeezenet.compress.quantizers import (
    QuantizeJob,
    Quantizer,
    get_quantizer,
    quantizer_names,
    register_quantizer,
)
from squeezenet.compress.weight_sharing import (
    LayerQuantization,
    QuantizeReport,
    WeightShare,
    centroid_parameters,
    kmeans1d,
    quantize_,
    remove_quantization_,
)
from squeezenet.formats.model import CompressedLayer, CompressedModel
from squeezenet.formats.policy import PrunePolicy, parse_prune_policy

__all__ = [
    "CompressConfig",
    "CompressedLayer",
    "CompressedModel",
    "LayerPruning",
    "LayerQuantization",
    "PruneMask",
    "PrunePolicy",
    "PruneReport",
    "QuantizeJob",
    "QuantizeReport",
    "Quantizer",
    "WeightShare",
    "centroid_parameters",
    "from_compressed",
    "get_masks",
    "get_quantizer",
    "kmeans1d",
    "layer_aliases",
    "parse_prune_policy",
    "prune_",
    "pruning_report",
    "quantize_",
    "quantizer_names",
    "register_quantizer",
    "remove_pruning_",
    "remove_quantization_",
    "to_compressed",
]
