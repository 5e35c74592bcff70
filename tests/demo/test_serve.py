"""The demo server: the package's page and scripts, the model, the class list, the sample, /result.

No browser here (tests/web/test_browser.py opens the page in Chromium): plain HTTP requests
against ``make_server`` on a free port.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from squeezenet.demo import DemoFiles, make_server, shipped_model, web_folder
from squeezenet.errors import MissingFileError

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
ENGINES = ["engine-mt.wasm", "engine.wasm"]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a photograph")
    return path


def _serve(files: DemoFiles) -> Iterator[str]:
    server = make_server(files, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def files(sample: Path) -> DemoFiles:
    return DemoFiles(shipped_model(), sample=sample)


@pytest.fixture
def url(files: DemoFiles) -> Iterator[str]:
    yield from _serve(files)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, "", b""


def _headers(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(response.headers)


def test_the_page_is_package_data_of_squeezenet_demo() -> None:
    folder = web_folder()
    assert folder == Path(str(resources.files("squeezenet.demo")))
    assert (folder / "index.html").is_file()
    assert sorted(p.name for p in (folder / "src").glob("*.js")) == SCRIPTS
    assert sorted(p.name for p in (folder / "src").glob("*.wasm")) == ENGINES


def test_every_script_the_page_imports_is_there() -> None:
    """index.html loads src/app.js; each script imports its neighbours as ./NAME.js (statically,
    with import(), or as a worker's new URL)."""
    folder = web_folder()
    loaded = re.findall(r'<script[^>]*src="([^"]+)"', (folder / "index.html").read_text())
    assert loaded == ["src/app.js"]
    for script in (folder / "src").glob("*.js"):
        for name in re.findall(r"(?:from |import\(|new URL\()'\./([^']+)'", script.read_text()):
            assert (folder / "src" / name).is_file(), f"{script.name} imports missing {name}"


def test_the_page_its_scripts_and_its_data_are_served(url: str, sample: Path) -> None:
    page = web_folder() / "index.html"
    assert _get(f"{url}/") == (200, "text/html", page.read_bytes())
    assert _get(f"{url}/index.html?x=1")[2] == page.read_bytes()
    for name in SCRIPTS:
        status, kind, body = _get(f"{url}/src/{name}")
        assert (status, kind) == (200, "text/javascript")
        assert body == (web_folder() / "src" / name).read_bytes()
    for name in ENGINES:
        wasm = web_folder() / "src" / name
        assert _get(f"{url}/src/{name}") == (200, "application/wasm", wasm.read_bytes())
    assert _get(f"{url}/model.sqz")[2] == shipped_model().read_bytes()
    names = _get(f"{url}/imagenet_1k.txt")[2].decode().split("\n")
    assert names[0] == "tench" and len(names) == 1001  # 1000 names and the final newline
    assert _get(f"{url}/sample.jpg") == (200, "image/jpeg", sample.read_bytes())


@pytest.mark.parametrize("path", ["/", "/src/app.js", "/src/engine-mt.wasm", "/model.sqz"])
def test_every_response_makes_the_page_cross_origin_isolated(url: str, path: str) -> None:
    """COOP + COEP on the page and what it loads: SharedArrayBuffer for the wasm threads."""
    headers = _headers(url + path)
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"


@pytest.mark.parametrize(
    "path", ["/src/missing.js", "/src/../serve.py", "/serve.py", "/__init__.py", "/src/app.css"]
)
def test_nothing_else_is_served(url: str, path: str) -> None:
    assert _get(url + path)[0] == 404


def test_without_a_sample_photograph_sample_jpg_is_a_404() -> None:
    """Without matplotlib there is no sample: the page then preloads nothing (app.js)."""
    for url in _serve(DemoFiles(shipped_model(), sample=None)):
        assert _get(f"{url}/sample.jpg")[0] == 404
        assert _get(f"{url}/src/app.js")[0] == 200


def test_the_default_sample_is_matplotlibs_photograph_or_none() -> None:
    sample = DemoFiles(shipped_model()).sample
    assert sample is None or (sample.name == "grace_hopper.jpg" and sample.is_file())


def test_results_posted_by_the_page_are_kept(url: str, files: DemoFiles) -> None:
    def post(body: bytes, path: str = "/result") -> int:
        request = urllib.request.Request(url + path, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert post(json.dumps({"digest": "ab"}).encode()) == 204
    assert files.results == [{"digest": "ab"}] and files.posted.is_set()
    assert post(b"not json") == 400
    assert post(b"{}", "/elsewhere") == 400
    assert files.results == [{"digest": "ab"}]


def test_a_missing_model_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"\.sqz file not found"):
        make_server(DemoFiles(tmp_path / "absent.sqz", sample=None), "127.0.0.1", 0)
