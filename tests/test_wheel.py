"""The wheel carries what an installed package needs: the demo page and scripts, the shipped
model, the class list, the PEP 561 marker; and serve-demo's server works from it.

Built offline (``pip wheel --no-build-isolation --no-index``) from a copy of the checkout, so the
build leaves no ``build/`` or ``*.egg-info`` behind in it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [
    "app.js",
    "inflate.js",
    "network.js",
    "preprocess.js",
    "squeezenet.js",
    "sqz.js",
    "wasm_engine.js",
    "wasm_threads.js",
    "wasm_worker.js",
]
PACKAGE_DATA = [
    "squeezenet/demo/index.html",
    *(f"squeezenet/demo/src/{name}" for name in SCRIPTS),
    "squeezenet/demo/src/engine.wasm",
    "squeezenet/demo/src/engine-mt.wasm",
    "squeezenet/py.typed",
    "squeezenet/pretrained/squeezenet1_0-dc.sqz",
    "squeezenet/pretrained/squeezenet1_0-dc.json",
    "squeezenet/pretrained/LICENCE-squeezenet-dc.txt",
    "squeezenet/formats/imagenet_1k.txt",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", tree)
    shutil.copy(ROOT / "README.md", tree)
    shutil.copytree(
        ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--no-index", "--quiet", "-w", str(out), str(tree),
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (found,) = out.glob("squeezenet_dc-*.whl")
    return found


def test_the_wheel_holds_the_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in PACKAGE_DATA if name not in names]
    assert not missing, missing
    assert "squeezenet/demo/serve.py" in names and "squeezenet/demo/__init__.py" in names
    assert not any(name.startswith(("web/", "tests/")) for name in names)


def test_serve_demo_serves_the_page_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    """Installed (unpacked) apart from any checkout, the server hands out the page, a script
    and the shipped model, with no torch imported."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = textwrap.dedent(
        """
        import sys, threading, urllib.request
        from squeezenet.demo import DemoFiles, make_server, shipped_model, web_folder
        print(web_folder())
        server = make_server(DemoFiles(shipped_model(), sample=None), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        for path in ("/", "/src/app.js", "/src/sqz.js", "/model.sqz", "/imagenet_1k.txt"):
            print(path, len(urllib.request.urlopen(url + path, timeout=10).read()))
        server.shutdown()
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch")[:3])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert Path(lines[0]) == site / "squeezenet" / "demo"
    sizes = dict(line.split() for line in lines[1:-1])
    assert sizes["/model.sqz"] == "477964"
    assert all(int(size) > 0 for size in sizes.values())
    assert lines[-1] == "[]"
