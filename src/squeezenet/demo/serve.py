"""The browser demo's local web server: the package's page with a ``.sqz`` as ``/model.sqz``.

The page (``squeezenet/demo/index.html`` and ``src/*.js``, ``src/engine.wasm`` and
``src/engine-mt.wasm`` beside it, package data) decodes the file and runs SqueezeNet with
WebAssembly SIMD, or plain JavaScript where the browser lacks it. Every response carries the
cross-origin isolation headers (:data:`ISOLATION`), so that the page may share wasm memory with
its worker threads (SharedArrayBuffer); it loads nothing from other origins, so they cost it
nothing. This server only hands out files, from the standard library's
``http.server``: the page's own files, the model, the ImageNet class list
that ``"imagenet-1k"`` headers name, and a sample photograph (matplotlib's, when installed; the
page then preloads nothing). It listens on 127.0.0.1 unless told otherwise. Tests add ``extra``
files (``/selftest.json`` and its images) and read what the page POSTs to ``/result``.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from squeezenet.errors import MissingFileError
from squeezenet.runtime.model_file import DEFAULT_MODEL, pretrained_path

log = logging.getLogger(__name__)
MAX_RESULT_BYTES = 1 << 20  # what the page may POST to /result
# fixed, not left to mimetypes (whose table the platform may lack): browsers compile a module
# with WebAssembly.compileStreaming only when it arrives as application/wasm
CONTENT_TYPES = {".js": "text/javascript", ".wasm": "application/wasm"}
# What makes the page crossOriginIsolated (and SharedArrayBuffer available to it): no window of
# another origin shares its process, and it embeds nothing that did not opt in.
ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


def web_folder() -> Path:
    """The folder of the page and its scripts: this package's own (``index.html``, ``src/``).

    Raises:
        MissingFileError: the page is not there (an installation that dropped package data).
    """
    folder = Path(str(resources.files("squeezenet.demo")))
    if not (folder / "index.html").is_file():
        raise MissingFileError(
            f"the demo page is not at {folder}; reinstall squeezenet (pip install squeezenet) "
            "so that its package data is in place"
        )
    return folder


def shipped_model() -> Path:
    """The package's own ``squeezenet1_0-dc.sqz``."""
    return pretrained_path(DEFAULT_MODEL)


def sample_image() -> Path | None:
    """matplotlib's sample photograph (Grace Hopper), or None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return path if path.is_file() else None


@dataclass
class DemoFiles:
    """What the server hands out, URL path -> file (or bytes)."""

    model: Path
    extra: Mapping[str, Path | bytes] = field(default_factory=dict)
    # /sample.jpg, which the page preloads; None (no matplotlib): a 404, and the page waits
    sample: Path | None = field(default_factory=sample_image)
    results: list[Any] = field(default_factory=list)  # JSON documents POSTed to /result
    posted: threading.Event = field(default_factory=threading.Event)

    def lookup(self, path: str) -> Path | bytes | None:
        web = web_folder()
        fixed: dict[str, Path | bytes | None] = {
            "/": web / "index.html",
            "/index.html": web / "index.html",
            "/model.sqz": self.model,
            "/sample.jpg": self.sample,
            "/imagenet_1k.txt": resources.files("squeezenet.formats")
            .joinpath("imagenet_1k.txt")
            .read_bytes(),
        }
        if path in self.extra:
            return self.extra[path]
        if path in fixed:
            return fixed[path]
        if path.startswith("/src/") and path.endswith((".js", ".wasm")) and "/" not in path[5:]:
            script = web / "src" / path[5:]
            return script if script.is_file() else None
        return None


def make_server(files: DemoFiles, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server for ``files`` (``port`` 0: any free port; ``server.server_address`` says which).

    Raises:
        MissingFileError: the model file does not exist, or the page is not there.
    """
    if not Path(files.model).is_file():
        raise MissingFileError(f".sqz file not found: {files.model}")
    web_folder()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.lookup(self.path.split("?", 1)[0])
            if found is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body = found if isinstance(found, bytes) else Path(found).read_bytes()
            name = found.name if isinstance(found, Path) else self.path.split("?", 1)[0]
            kind = CONTENT_TYPES.get(Path(name).suffix) or mimetypes.guess_type(name)[0]
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", kind or "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in ISOLATION.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            if self.path != "/result" or not 0 < length <= MAX_RESULT_BYTES:
                self.send_error(HTTPStatus.BAD_REQUEST)
                return
            try:
                files.results.append(json.loads(self.rfile.read(length)))
            except ValueError:
                self.send_error(HTTPStatus.BAD_REQUEST)
                return
            files.posted.set()
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("serve-demo: " + format, *args)

    return ThreadingHTTPServer((host, port), Handler)
