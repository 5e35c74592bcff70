"""The browser's two engines (scalar JavaScript, WebAssembly SIMD) against Python's forward pass.

Python prepares the input tensors (its own preprocessing of two golden images, the shipped
model's preset); node runs both engines of demo/src on exactly those tensors
(web/tools/run_engines.mjs), and their logits must equal the numpy runtime's within 1e-3 of the
logits' range. Also: web/wasm/build.sh rebuilds the committed engine.wasm byte for byte where
clang and wasm-ld are installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from squeezenet.runtime import images, load, read_model
from squeezenet.runtime.model_file import DEFAULT_MODEL, pretrained_path

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
GOLDEN = ROOT / "tests_light" / "golden" / "images"
ENGINE = ROOT / "src" / "squeezenet" / "demo" / "src" / "engine.wasm"


@pytest.mark.skipif(NODE is None, reason="node (Node.js >= 18) is not installed")
def test_both_engines_match_the_python_forward_pass(tmp_path: Path) -> None:
    paths = [GOLDEN / "a" / "0.png", GOLDEN / "b" / "2.png"]
    batch = images.prepare(paths, read_model(DEFAULT_MODEL).preprocess)  # (2, 3, 227, 227)
    expected = load().logits(batch)  # (2, 1000)
    inputs = tmp_path / "inputs.f32"
    inputs.write_bytes(batch.astype("<f4").tobytes())
    done = subprocess.run(
        [str(NODE), str(ROOT / "web" / "tools" / "run_engines.mjs"),
         str(pretrained_path(DEFAULT_MODEL)), str(inputs), *map(str, batch.shape)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    for engine in ("js", "wasm"):
        logits = np.asarray(got[engine], np.float32)
        assert logits.shape == expected.shape, engine
        for row, want in zip(logits, expected, strict=True):
            spread = float(want.max() - want.min())
            assert spread > 1.0
            assert np.abs(row - want).max() <= 1e-3 * spread, engine
        assert (logits.argmax(1) == expected.argmax(1)).all(), engine


@pytest.mark.skipif(
    shutil.which("wasm-ld") is None or shutil.which("clang") is None,
    reason="clang and wasm-ld are not installed (apt-get install -y clang lld)",
)
def test_the_build_script_reproduces_the_committed_engine(tmp_path: Path) -> None:
    out = tmp_path / "engine.wasm"
    subprocess.run(
        ["sh", str(ROOT / "web" / "wasm" / "build.sh"), str(out)], check=True, timeout=120
    )
    assert out.read_bytes() == ENGINE.read_bytes(), "rebuild engine.wasm: sh web/wasm/build.sh"
