"""Reader of the published Caffe Deep Compression SqueezeNet file (``compressed_SqueezeNet.net``).

Layout (shared/data/README.md), all little-endian, no padding: ``uint32 n[26]`` entry counts,
then per layer ``float32[256]`` codebook, ``float32[out]`` bias, ``uint8[n]`` codes and
``uint8[(n+1)//2]`` 4-bit gaps, low nibble first. An entry sits ``gap`` zeros after the previous
one; long runs of zeros were bridged with filler entries of code 0, and ``codebook[0] == 0.0``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from squeezenet.errors import FileFormatError
from squeezenet.formats.model import CompressedLayer, CompressedModel
from squeezenet.formats.spec import standard_class_names

# How the released Caffe SqueezeNet wants its pixels (the file itself does not say): BGR, 0..255
# minus the per-channel mean, no std, 227 px crops of a 256 px short side. The "caffe" preset of
# squeezenet.arch.preprocess is this record.
CAFFE_PREPROCESS: dict[str, object] = {
    "name": "caffe",
    "resize": 256,
    "crop": 227,
    "mean": (104.0, 117.0, 123.0),
    "std": (1.0, 1.0, 1.0),
    "channel_order": "BGR",
    "value_scale": 255.0,
    "channels": 3,
    "interpolation": "bilinear",
}

CODEBOOK_SIZE = 256  # every layer of the published file is 8-bit
HEADER_BYTES = 4 * 26


class CaffeDCFormatError(FileFormatError):
    """The bytes are not a well-formed Caffe Deep Compression SqueezeNet v1.0 file.

    ``.field`` names the part (``"entry counts"``, ``"layer 3 (features.3.expand1x1)"``,
    ``"trailing bytes"``) and ``.offset`` the byte where it starts; the message names both.
    """


def _squeezenet1_0_layers() -> list[tuple[str, tuple[int, int, int, int]]]:
    """(state-dict prefix, OIHW weight shape) of SqueezeNet v1.0's 26 convolutions, in order."""
    layers = [("features.0", (96, 3, 7, 7))]
    fires = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]
    channels = 96
    for index, (squeeze, expand) in zip((3, 4, 5, 7, 8, 9, 10, 12), fires, strict=True):
        layers += [
            (f"features.{index}.squeeze", (squeeze, channels, 1, 1)),
            (f"features.{index}.expand1x1", (expand, squeeze, 1, 1)),
            (f"features.{index}.expand3x3", (expand, squeeze, 3, 3)),
        ]
        channels = 2 * expand
    layers.append(("classifier.1", (1000, 512, 1, 1)))
    return layers


LAYERS = _squeezenet1_0_layers()


def read_caffe_dc(source: str | os.PathLike[str] | bytes) -> CompressedModel:
    """Read the published 8-bit Deep Compression SqueezeNet v1.0 (675,763 bytes).

    Args:
        source: a path to ``compressed_SqueezeNet.net`` or its bytes.

    Returns:
        ``squeezenet1_0`` with ``final_conv_padding=1``, the Caffe preprocessing, the ImageNet-1k
        class names and 26 8-bit layers; filler entries (code 0, value 0.0) are dropped, so
        each layer holds exactly its non-zero weights.

    Raises:
        CaffeDCFormatError: the entry counts do not frame the bytes exactly, or a layer's
            entries run past its weight.
    """
    data = bytes(source) if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
    if len(data) < HEADER_BYTES:
        raise CaffeDCFormatError(
            f"not a Caffe Deep Compression SqueezeNet file: {len(data)} bytes is shorter than "
            f"the {HEADER_BYTES}-byte header of 26 entry counts",
            field="entry counts",
            offset=0,
        )
    counts = np.frombuffer(data, dtype="<u4", count=len(LAYERS)).astype(np.int64)
    offset = HEADER_BYTES
    layers = []
    for index, ((name, shape), n) in enumerate(zip(LAYERS, counts.tolist(), strict=True)):
        size = 4 * CODEBOOK_SIZE + 4 * shape[0] + n + (n + 1) // 2
        if offset + size > len(data):
            raise CaffeDCFormatError(
                f"Caffe DC file: layer {index} ({name}) with {n} entries needs {size} bytes at "
                f"byte {offset}, but the file ends at byte {len(data)}; the file is truncated "
                "or its header is corrupt",
                field=f"layer {index} ({name})",
                offset=offset,
            )
        layers.append(_read_layer(data, offset, index, name, shape, n))
        offset += size
    if offset != len(data):
        raise CaffeDCFormatError(
            f"Caffe DC file: {len(data) - offset} unexpected bytes after the last layer at byte "
            f"{offset}; the entry counts do not match the file (is it SqueezeNet v1.0?)",
            field="trailing bytes",
            offset=offset,
        )
    return CompressedModel(
        model_name="squeezenet1_0",
        config={"final_conv_padding": 1},  # the Caffe model's conv10 padding quirk
        preprocess=dict(CAFFE_PREPROCESS),
        class_names=standard_class_names("imagenet-1k"),
        layers=layers,
    )


def _read_layer(
    data: bytes, offset: int, index: int, name: str, shape: tuple[int, ...], n: int
) -> CompressedLayer:
    codebook = np.frombuffer(data, "<f4", CODEBOOK_SIZE, offset).astype(np.float32)
    offset += 4 * CODEBOOK_SIZE
    bias = np.frombuffer(data, "<f4", shape[0], offset).astype(np.float32)
    offset += 4 * shape[0]
    codes = np.frombuffer(data, np.uint8, n, offset).astype(np.uint16)
    offset += n
    packed = np.frombuffer(data, np.uint8, (n + 1) // 2, offset)
    gaps = np.stack([packed & 15, packed >> 4], axis=1).ravel()[:n].astype(np.int64)
    positions = np.cumsum(gaps + 1) - 1
    numel = int(np.prod(shape))
    if n and positions[-1] >= numel:
        raise CaffeDCFormatError(
            f"Caffe DC file: layer {index} ({name}) entries reach position {positions[-1]} "
            f"(gaps at byte {offset}), past its {numel} weights; the file is corrupt",
            field=f"layer {index} ({name}) gaps",
            offset=offset,
        )
    if codebook[0] == 0.0:  # filler entries carry code 0: dropping them loses nothing
        keep = codes != 0
        positions, codes = positions[keep], codes[keep]
    return CompressedLayer(
        name=name,
        shape=shape,
        bits=8,
        codebook=codebook,
        positions=positions,
        codes=codes,
        bias=bias,
    )
