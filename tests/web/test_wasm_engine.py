"""The browser's engines (scalar JavaScript, WebAssembly SIMD, the same on threads) against
Python's forward pass.

Python prepares the input tensors (its own preprocessing of two golden images for the shipped
model; random tensors for randomised models of every stem, batch norm and bypass); node runs
the engines of demo/src on exactly those tensors (web/tools/run_engines.mjs; the threaded one on
3 threads, worker_threads for the page's workers), and their logits must equal the numpy
runtime's within 1e-3 of the logits' range, the threaded engine's the one-thread engine's bit
for bit. Also: the page's table of registry defaults is the Python registry's, and
web/wasm/build.sh rebuilds the committed engine.wasm and engine-mt.wasm byte for byte where
clang and wasm-ld are installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.test_numpy_engine import _randomised
from squeezenet.arch.config import SqueezeNetConfig
from squeezenet.arch.layers import layer_list
from squeezenet.arch.preprocess import IMAGENET
from squeezenet.arch.registry import get_spec, list_models
from squeezenet.compress.plain_data import to_compressed
from squeezenet.compress.weight_sharing import quantize_
from squeezenet.formats import encode_sqz
from squeezenet.models import create_model
from squeezenet.runtime import images, load, read_model
from squeezenet.runtime.model_file import DEFAULT_MODEL, pretrained_path
from squeezenet.runtime.numpy_engine import NumpyNetwork

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
GOLDEN = ROOT / "tests_light" / "golden" / "images"
ENGINES = ROOT / "src" / "squeezenet" / "demo" / "src"
needs_node = pytest.mark.skipif(NODE is None, reason="node (Node.js >= 18) is not installed")


def _run_engines(model: Path, batch: np.ndarray, folder: Path) -> dict[str, np.ndarray]:
    """Each engine's logits of ``batch`` (float32 ``(N, C, H, W)``): name -> ``(N, classes)``."""
    inputs = folder / "inputs.f32"
    inputs.write_bytes(batch.astype("<f4").tobytes())
    done = subprocess.run(
        [str(NODE), str(ROOT / "web" / "tools" / "run_engines.mjs"),
         str(model), str(inputs), *map(str, batch.shape)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return {name: np.asarray(rows, np.float32) for name, rows in json.loads(done.stdout).items()}


def _assert_close(got: dict[str, np.ndarray], expected: np.ndarray) -> None:
    assert set(got) == {"js", "wasm", "wasm-mt"}
    assert np.array_equal(got["wasm-mt"], got["wasm"])  # each pixel computed as on one thread
    for engine, logits in got.items():
        assert logits.shape == expected.shape, engine
        for row, want in zip(logits, expected, strict=True):
            spread = float(want.max() - want.min())
            assert spread > 0.1  # the logits differ: a real comparison
            assert np.abs(row - want).max() <= 1e-3 * spread, engine
        assert (logits.argmax(1) == expected.argmax(1)).all(), engine


@needs_node
def test_every_engine_matches_the_python_forward_pass(tmp_path: Path) -> None:
    paths = [GOLDEN / "a" / "0.png", GOLDEN / "b" / "2.png"]
    batch = images.prepare(paths, read_model(DEFAULT_MODEL).preprocess)  # (2, 3, 227, 227)
    expected = load().logits(batch)  # (2, 1000)
    _assert_close(_run_engines(pretrained_path(DEFAULT_MODEL), batch, tmp_path), expected)


@needs_node
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("squeezenet1_0_simple_bypass", {}),
        ("squeezenet1_1_complex_bypass", {"final_conv_padding": 1}),
        ("squeezenet_small", {"bypass": "complex"}),  # batch norm in the registry's config
    ],
)
def test_every_stem_batch_norm_and_bypass_match_python(
    name: str, options: dict[str, Any], tmp_path: Path
) -> None:
    """Randomised weights and batch norms (so a wrong fold shows), shared at 4 bits so that
    they fit a .sqz; the bypass and batch norm come from the registry or the header's config."""
    model = _randomised(create_model(name, seed=0, **options))
    quantize_(model, 4, iters=3)
    path = tmp_path / "model.sqz"
    path.write_bytes(encode_sqz(to_compressed(model, model_name=name, preprocess=IMAGENET)))
    decoded = read_model(path)
    assert decoded.config == options
    batch = np.random.default_rng(0).standard_normal((2, 3, 63, 63)).astype(np.float32)
    expected = NumpyNetwork(layer_list(decoded.model_config()), decoded.weights)(batch)
    _assert_close(_run_engines(path, batch, tmp_path), expected)


@needs_node
def test_the_pages_registry_defaults_are_the_registrys() -> None:
    script = (
        "import('./src/squeezenet/demo/src/network.js')"
        ".then((m) => process.stdout.write(JSON.stringify(m.REGISTRY)))"
    )
    done = subprocess.run(
        [str(NODE), "--input-type=module", "-e", script],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    page = json.loads(done.stdout)
    names = [n for n in list_models() if isinstance(get_spec(n).config, SqueezeNetConfig)]
    assert sorted(page) == names
    for name in names:
        config = get_spec(name).config
        assert page[name] == {field: getattr(config, field) for field in page[name]}, name
        assert set(page[name]) == {"stem", "bypass", "batch_norm", "final_conv_padding"}


@pytest.mark.skipif(
    shutil.which("wasm-ld") is None or shutil.which("clang") is None,
    reason="clang and wasm-ld are not installed (apt-get install -y clang lld)",
)
def test_the_build_script_reproduces_the_committed_engines(tmp_path: Path) -> None:
    subprocess.run(
        ["sh", str(ROOT / "web" / "wasm" / "build.sh"), str(tmp_path)], check=True, timeout=120
    )
    for name in ("engine.wasm", "engine-mt.wasm"):
        built = (tmp_path / name).read_bytes()
        assert built == (ENGINES / name).read_bytes(), f"rebuild {name}: sh web/wasm/build.sh"
