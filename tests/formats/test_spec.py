"""The format's constants and standard class lists: defined once, pinned, tied to FORMAT.md."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import get_args

from squeezenet.formats import bitio, huffman, rans, spec, sqz

FORMAT_MD = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"


def test_imagenet_list_is_pinned_by_its_sha256() -> None:
    data = resources.files("squeezenet.formats").joinpath(spec.IMAGENET_1K_FILE).read_bytes()
    names = data.decode("utf-8").split("\n")
    assert data.endswith(b"\n") and names[-1] == "" and b"\r" not in data
    names = names[:-1]
    assert len(names) == 1000 and all(names) and len(set(names)) == 1000
    # FORMAT.md section 3: the names joined by "\n", UTF-8, no trailing newline.
    digest = hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()
    assert digest == spec.IMAGENET_1K_SHA256 == spec.class_list_sha256(names)
    assert spec.IMAGENET_1K_SHA256 in FORMAT_MD.read_text(encoding="utf-8")
    assert spec.standard_class_names("imagenet-1k") == names
    assert spec.class_list_sha256(["a", "b"]) == hashlib.sha256(b"a\nb").hexdigest()


def test_shipped_imagenet_list_equals_torchvisions() -> None:
    from torchvision.models import ResNet18_Weights

    assert spec.standard_class_names("imagenet-1k") == ResNet18_Weights.DEFAULT.meta["categories"]


def test_standard_lists_need_no_torchvision() -> None:
    code = (
        "import sys; from squeezenet.formats.spec import standard_class_names as s; "
        "assert len(s('imagenet-1k')) == 1000 and s('cifar-10')[0] == 'airplane'; "
        "assert 'torchvision' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_cifar10_list_is_the_one_in_format_md() -> None:
    text = FORMAT_MD.read_text(encoding="utf-8")
    assert ", ".join(spec.CIFAR10_CLASSES) in re.sub(r"\s+", " ", text)


def test_formats_modules_take_the_format_constants_from_spec() -> None:
    assert huffman.MAX_CODE_LENGTH is spec.MAX_CODE_LENGTH
    for name in ("STATE_LOW", "MAX_PRECISION", "MIN_PRECISION", "SYMBOLS_PER_BYTE"):
        assert not hasattr(rans, name), f"rans.{name}: use spec's"
    assert not hasattr(huffman, "MAX_ALPHABET")
    assert get_args(bitio.Codec) == ("auto", *spec.CODEC_NAMES.values())
    assert spec.MAX_CODEC[max(spec.VERSIONS)] == max(spec.CODEC_NAMES)
    assert spec.VERSION == 2 and spec.VERSION_GRID == 3
    assert spec.VERSION_BIAS_GRID == max(spec.VERSIONS) == 4
    assert spec.LAYER_FLAGS_V4 == spec.LAYER_FLAGS_V3 | spec.FLAG_BIAS_GRID == 0x3F
    assert rans.max_frequency(spec.MAX_RANS_PRECISION) == 3 << (spec.MAX_RANS_PRECISION - 2)
    assert 1 << spec.MAX_RANS_PRECISION <= spec.RANS_STATE_LOW  # rANS needs L % M == 0
    # Encoder defaults are choices, not format constants, but must be valid block sizes.
    for size in (huffman.DEFAULT_BLOCK_SIZE, rans.DEFAULT_BLOCK_SIZE):
        assert spec.MIN_BLOCK_LOG2 <= size.bit_length() - 1 <= spec.MAX_BLOCK_LOG2
    assert get_args(sqz.CodebookDtype) == ("float32", "float16")


def test_copies_outside_formats_equal_spec() -> None:
    """The compressor's lists of codecs and dtypes are the format's: tie them."""
    from squeezenet.compress import config as compress_config
    from squeezenet.formats import model

    assert model.MAX_BITS is spec.MAX_BITS
    assert set(compress_config.CODECS) == set(get_args(bitio.Codec))
    assert set(compress_config.CODEBOOK_DTYPES) == set(get_args(sqz.CodebookDtype))
    assert compress_config.MAX_GAP_BITS is spec.MAX_GAP_BITS
