"""File formats: the .sqz compressed-model format and the published Caffe Deep Compression file."""

from squeezenet.formats.caffe_dc import CaffeDCFormatError, read_caffe_dc
from squeezenet.formats.spec import SqzFormatError
from squeezenet.formats.sqz import (
    decode_sqz,
    encode_sqz,
    inspect_sqz,
    read_sqz,
    tensor_digest,
    write_sqz,
)

__all__ = [
    "CaffeDCFormatError",
    "SqzFormatError",
    "decode_sqz",
    "encode_sqz",
    "inspect_sqz",
    "read_caffe_dc",
    "read_sqz",
    "tensor_digest",
    "write_sqz",
]
