"""The demo page in a real browser: headless Chromium (Debian's `chromium`) against serve-demo.

The page fetches the mixed .sqz of the imported published weights, reports the SHA-256 of its
decoded tensors, classifies the first 20 images of the shared ImageNet sample, and shows a
corrupted file's one-line error; it POSTs what it found to the server, and the test compares
with Python's decoder and `squeezenet predict`. With the shipped model, the page preloads the
sample photograph where the server has one and quietly none where it has not. Both engines
run: the WebAssembly SIMD one (engine.wasm), the same on two threads (engine-mt.wasm and a
worker, on the cross-origin isolated page) and the scalar JavaScript fallback. Skips, with a
reason, without Chromium or the shared data (`.ci/run` installs Chromium where apt-get can).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import CHROMIUM, NO_CHROMIUM, browser_run

from squeezenet.compress.config import CompressConfig
from squeezenet.compress.spellings import parse_bits
from squeezenet.demo.serve import DemoFiles, sample_image, shipped_model
from squeezenet.deploy.predict import predict
from squeezenet.formats import read_sqz, tensor_digest
from squeezenet.workflows.compress_file import compress_file, import_caffe_dc
from squeezenet.workflows.load import load_any

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


@pytest.fixture(scope="module")
def mixed_sqz(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("web")
    weights = folder / "imported.safetensors"
    import_caffe_dc(shared_data / "squeezenet-dc" / "compressed_SqueezeNet.net", weights)
    out = folder / "mixed.sqz"
    compress_file(weights, out, CompressConfig(bits=parse_bits("mixed")))
    return out


@pytest.mark.parametrize("engine", ["js", "wasm", "wasm-mt"])
def test_the_page_decodes_classifies_and_reports_errors(
    engine: str, mixed_sqz: Path, shared_data: Path, tmp_path: Path
) -> None:
    """On every engine (?engine=js|wasm|wasm-mt), the page's own path (canvas resize) gives
    `squeezenet predict`'s top-1."""
    # the 20 (about a second each in the page's JavaScript network, 0.1 s in wasm)
    images = sorted((shared_data / "imagenet-sample").glob("*.jpg"))[:20]
    corrupt = bytearray(mixed_sqz.read_bytes())
    corrupt[len(corrupt) // 2] ^= 0x10  # the CRC no longer matches
    extra: dict[str, Path | bytes] = {f"/images/{p.name}": p for p in images}
    plan = {"images": [f"images/{p.name}" for p in images], "corrupt": "corrupt.sqz"}
    extra["/selftest.json"] = json.dumps(plan).encode()
    extra["/corrupt.sqz"] = bytes(corrupt)
    result = browser_run(DemoFiles(mixed_sqz, extra), f"selftest=1&engine={engine}&threads=2")
    assert result["engine"] == engine
    assert result["threads"] == (2 if engine == "wasm-mt" else None)
    assert result["digest"] == tensor_digest(read_sqz(mixed_sqz))
    expected = [r.indices[0] for r in predict(load_any(mixed_sqz), [str(p) for p in images], top=1)]
    assert [row["top1"] for row in result["images"]] == expected
    shown = result["corrupt"]["shown"]
    assert result["corrupt"]["type"] == "SqzFormatError" and result["corrupt"]["field"] == "crc32"
    assert shown.startswith("error: ") and "\n" not in shown and "crc" in shown.lower()


@pytest.mark.parametrize("with_sample", [True, False], ids=["sample", "no-sample"])
def test_the_page_preloads_the_sample_only_where_there_is_one(with_sample: bool) -> None:
    """The shipped model loads either way; with matplotlib's photograph the page shows its top
    5, without one (no matplotlib: /sample.jpg is a 404) it shows no classes and no error."""
    sample = sample_image() if with_sample else None
    if with_sample and sample is None:
        pytest.skip("matplotlib's sample photograph is not installed")
    plan = json.dumps({"images": []}).encode()
    result = browser_run(DemoFiles(shipped_model(), {"/selftest.json": plan}, sample=sample))
    assert result["loaded"] == {"error": "", "rows": 5 if with_sample else 0}
    assert result["digest"] == tensor_digest(read_sqz(shipped_model()))
