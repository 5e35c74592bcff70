"""File formats, without torch: the .sqz compressed-model format and its coders, the published
Caffe Deep Compression file, the policy file, and the plain data they store
(``CompressedModel``, grid layers)."""

from squeezenet.formats.caffe_dc import CaffeDCFormatError, read_caffe_dc
from squeezenet.formats.grid import GridCode
from squeezenet.formats.model import CompressedLayer, CompressedModel
from squeezenet.formats.policy import (
    PolicyFile,
    PolicyFileError,
    PrunePolicy,
    parse_prune_policy,
    read_policy,
    write_policy,
)
from squeezenet.formats.spec import SqzFormatError
from squeezenet.formats.sqz import decode_sqz, encode_sqz, read_sqz, tensor_digest, write_sqz
from squeezenet.formats.sqz_inspect import inspect_sqz

__all__ = [
    "CaffeDCFormatError",
    "CompressedLayer",
    "CompressedModel",
    "GridCode",
    "PolicyFile",
    "PolicyFileError",
    "PrunePolicy",
    "SqzFormatError",
    "decode_sqz",
    "encode_sqz",
    "inspect_sqz",
    "parse_prune_policy",
    "read_caffe_dc",
    "read_policy",
    "read_sqz",
    "tensor_digest",
    "write_policy",
    "write_sqz",
]
