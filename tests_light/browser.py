"""The demo page in headless Chromium (Debian's ``chromium``): serve it, open it with
``?selftest=1``, return what the page POSTs to ``/result``. Shared by the light suite and
tests/web."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from typing import Any

from squeezenet.demo.serve import DemoFiles, make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "headless Chromium missing (apt-get install -y chromium)"
PAGE_TIMEOUT_S = 300


def browser_run(files: DemoFiles, query: str = "selftest=1") -> dict[str, Any]:
    """Serve ``files``, open the page in headless Chromium, return what it POSTed."""
    assert CHROMIUM is not None, NO_CHROMIUM
    server = make_server(files, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [
                str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", f"--user-data-dir={profile}", "--remote-debugging-port=0",
                f"http://127.0.0.1:{port}/?{query}",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            posted = files.posted.wait(PAGE_TIMEOUT_S)
        finally:
            browser.kill()
            browser.wait()
            server.shutdown()
            server.server_close()
    assert posted, f"the page posted nothing in {PAGE_TIMEOUT_S} s"
    result: dict[str, Any] = files.results[-1]
    assert "failed" not in result, result.get("failed")
    return result
