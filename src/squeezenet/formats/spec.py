"""Constants, limits and the error type of the .sqz format, version 4 (docs/FORMAT.md)."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from squeezenet.errors import FileFormatError

MAGIC = b"\x89SQZ"  # a non-ASCII first byte catches 7-bit transfers, as in PNG
VERSION = 2  # written by the encoder when no version-3 feature is used
VERSION_GRID = 3  # written when a file has grid layers, float16 biases or gamma rANS tables
VERSION_BIAS_GRID = 4  # written when a grid layer's bias is on a grid (FLAG_BIAS_GRID)
VERSIONS = (1, 2, 3, 4)  # read by the decoder; version 1 has no rANS codec

HEADER_JSON = 0  # the header record is UTF-8 JSON as is
HEADER_ZLIB = 1  # the header record is zlib-compressed UTF-8 JSON

CODEC_RAW = 0  # fixed-width bit packing, MSB first
CODEC_HUFFMAN = 1  # canonical Huffman, table stored as code lengths
CODEC_RANS = 2  # static rANS, table stored as quantised frequencies (versions 2 to 4)
CODEC_NAMES = {CODEC_RAW: "raw", CODEC_HUFFMAN: "huffman", CODEC_RANS: "rans"}
# the largest codec id of each version
MAX_CODEC = {1: CODEC_HUFFMAN, 2: CODEC_RANS, 3: CODEC_RANS, 4: CODEC_RANS}

FLAG_FLOAT16 = 1  # codebook stored as float16 instead of float32
FLAG_BIAS = 2  # a float32 bias follows the codebook
FLAG_COMPLEMENT = 4  # the position stream lists the *absent* weights (for near-dense layers)
FLAG_GRID = 8  # version 3: a grid layer record (section 4a)
FLAG_BIAS16 = 16  # version 3: the bias is float16 (with FLAG_BIAS only)
LAYER_FLAGS = FLAG_FLOAT16 | FLAG_BIAS | FLAG_COMPLEMENT
FLAG_BIAS_GRID = 32  # version 4: a grid layer's bias as levels on a uniform grid (GRID, BIAS)
LAYER_FLAGS_V3 = LAYER_FLAGS | FLAG_GRID | FLAG_BIAS16
LAYER_FLAGS_V4 = LAYER_FLAGS_V3 | FLAG_BIAS_GRID
QUANTIZER_UNIFORM = 0  # grid layer: w = k * step
QUANTIZER_DEPENDENT = 1  # two interleaved quantizers picked by a 4-state machine (trellis-coded)
MAX_GRID_BITS = 15  # level symbols < 2**15, so |m| <= 2**15 and a layer has < 2**16 values
MIN_STATE_PERIOD_LOG2, MAX_STATE_PERIOD_LOG2 = 4, 16  # decoders loop over one period
MAX_GAMMA_ZEROS = 16  # a gamma-coded frequency f + 1 <= 2**16 has at most 16 leading zeros
GAMMA_TABLE_BYTES_PER_SYMBOL = 5  # table bytes <= 5 * T

DTYPE_FLOAT32 = 0  # the only dense-tensor dtype in versions 1 to 3

# Bounds: a decoder checks each before it allocates or reads what the field describes.
MAX_HEADER_BYTES = 1 << 20  # stored header record
MAX_HEADER_JSON_BYTES = 1 << 22  # header JSON after decompression
MAX_LAYERS = 4096
MAX_DENSE = 4096
MAX_NAME_BYTES = 255
MAX_NDIM = 8
MAX_NUMEL = (1 << 31) - 1  # per layer weight; each dimension is bounded by it too
MAX_BIAS = 1 << 24
MAX_BITS = 16  # codebook index width: codes are uint16, so a codebook has <= 2**16 entries
MAX_GAP_BITS = 16  # position symbol width
MAX_CODE_LENGTH = 20  # Huffman code length
MAX_LENGTH_WIDTH = 5  # bits per stored Huffman code length
MIN_BLOCK_LOG2, MAX_BLOCK_LOG2 = 4, 12  # Huffman and rANS sync block of 16..4096 symbols
MIN_RANS_PRECISION, MAX_RANS_PRECISION = 2, 16  # rANS frequencies sum to 2**precision
RANS_WORD_BITS = 16  # rANS renormalisation words are u16le
RANS_STATE_LOW = 1 << RANS_WORD_BITS  # the state lives in [2**16, 2**32); 2**16 ends a block
RANS_TABLE_FREE_LOG2 = 12  # 2**precision <= max(2**12, 8 * body bytes): bounded decode tables
RANS_SYMBOLS_PER_BYTE = 20  # rANS count <= 20 * body bytes (each symbol >= log2(4/3) bits)
MAX_DENSE_NUMEL = 1 << 28
MAX_JSON_DEPTH = 64  # header arrays and objects nest at most this deep (the top level is 1)
JSON_INT_MIN, JSON_INT_MAX = -(1 << 63), (1 << 63) - 1  # header integers are int64
VARINT_MAX_BYTES = 5  # LEB128, values < 2**32, minimal encoding
VARINT_MAX = (1 << 32) - 1
CRC_BYTES = 4
MIN_FILE_BYTES = 14  # magic, version, 1-byte JSON header record, two zero counts, CRC

# Class lists named in the header instead of stored ("classes": "<name>").
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
STANDARD_CLASS_LISTS = {"imagenet-1k": 1000, "cifar-10": 10}  # name -> number of classes
IMAGENET_1K_FILE = "imagenet_1k.txt"  # package data: one name per line, UTF-8, index order
# SHA-256 of the 1,000 names joined by "\n", UTF-8, no trailing newline (docs/FORMAT.md sec. 3):
# what "imagenet-1k" means in a file can only change with the format version.
IMAGENET_1K_SHA256 = "0b0f9fee7c952f257418d62aa701f023a9da13b443a14f5c4291e5724d92967c"


def class_list_sha256(names: tuple[str, ...] | list[str]) -> str:
    r"""The SHA-256 that pins a class list: of the names joined by ``"\n"`` in UTF-8."""
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()


@functools.cache
def _standard(name: str) -> tuple[str, ...]:
    if name == "imagenet-1k":
        data = resources.files("squeezenet.formats").joinpath(IMAGENET_1K_FILE)
        text = data.read_text(encoding="utf-8")
        names = tuple(text.split("\n")[:-1])  # every name ends in "\n"
        if class_list_sha256(names) != IMAGENET_1K_SHA256 or len(names) != 1000:
            raise RuntimeError(f"squeezenet.formats/{IMAGENET_1K_FILE} is damaged; reinstall")
        return names
    if name == "cifar-10":
        return CIFAR10_CLASSES
    raise KeyError(name)


def standard_class_names(name: str) -> list[str]:
    """The class names of a named standard list, e.g. ``"imagenet-1k"`` (torchvision's list,
    shipped with the package and pinned by :data:`IMAGENET_1K_SHA256`)."""
    if name not in STANDARD_CLASS_LISTS:
        raise ValueError(f"unknown class list {name!r}; known: {', '.join(STANDARD_CLASS_LISTS)}")
    return list(_standard(name))


def standard_class_list_name(names: list[str]) -> str | None:
    """The name of the standard list equal to ``names``, or None."""
    for name, size in STANDARD_CLASS_LISTS.items():
        if len(names) == size and tuple(names) == _standard(name):
            return name
    return None


class SqzFormatError(FileFormatError):
    """Bytes that are not a valid .sqz file.

    ``.field`` names the field as docs/FORMAT.md does (``"layer 3 codebook size"``) and
    ``.offset`` is the byte offset where it starts; the message names both.
    """
