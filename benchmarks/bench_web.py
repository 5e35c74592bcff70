"""The browser demo measured in headless Chromium: what the page fetches, and how fast it runs.

Serves the page (``squeezenet serve-demo``'s server) with a ``.sqz``, opens it in Debian's
Chromium through Playwright, and reports every resource the page fetched with its bytes, the
decode time of the file and the time to classify each of the first images of the shared
ImageNet sample (or the demo photograph), then saves a screenshot of the page after its first
classification. Needs ``apt-get install -y chromium`` and ``pip install playwright`` (only
this script uses Playwright; the tests drive Chromium without it).

    python benchmarks/bench_web.py --images 20 --screenshot docs/web_demo.png

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

from squeezenet.demo.serve import DemoFiles, make_server, shipped_model
from squeezenet.experiments.provenance import command_line, machine

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    args = _parse()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("bench_web: Chromium missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("bench_web: Playwright missing (pip install playwright)")
    images = sorted((SHARED / "imagenet-sample").glob("*.jpg"))[: args.images]
    extra: dict[str, Path | bytes] = {f"/images/{p.name}": p for p in images}
    files = DemoFiles(Path(args.model), extra)
    server = make_server(files, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    fetched: list[dict[str, Any]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 600})
        page.on(
            "requestfinished",
            lambda request: (
                None if request.url.startswith("blob:") else fetched.append(_size(request))
            ),
        )
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        facts = page.inner_text("#facts")
        first_view = list(fetched)  # what the first view fetched (the timings fetch again)
        if args.screenshot:
            page.screenshot(path=args.screenshot, full_page=True)
        timings = page.evaluate(_TIMING_SCRIPT, [f"images/{p.name}" for p in images])
        browser.close()
    server.shutdown()
    page_fetches = [f for f in first_view if not f["url"].startswith("images/")]
    document = {
        "command": command_line(sys.argv),
        "machine": machine(),
        "browser": "chromium (Debian), headless",
        "model": str(args.model),
        "first_view": facts,
        "fetched": page_fetches,
        "fetched_bytes": sum(f["bytes"] for f in page_fetches),
        "decode_ms": timings["decode_ms"],
        "classify_ms": timings["classify_ms"],
        "classify_ms_median": statistics.median(timings["classify_ms"] or [0]),
        "images": len(images),
    }
    print(json.dumps(document, indent=2))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(shipped_model()))
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--screenshot", default=None)
    return parser.parse_args()


def _size(request: Any) -> dict[str, Any]:
    response = request.response()
    body = response.body() if response is not None else b""
    path = request.url.split("/", 3)[-1]
    return {"url": path or "/", "bytes": len(body)}


# Runs in the page: decode the served file again and classify each image, timing both.
_TIMING_SCRIPT = """
async (urls) => {
  const { decodeSqz } = await import('./src/sqz.js');
  const { buildSqueezeNet } = await import('./src/squeezenet.js');
  const bytes = new Uint8Array(await (await fetch('model.sqz')).arrayBuffer());
  const start = performance.now();
  const model = buildSqueezeNet(decodeSqz(bytes));
  const decode_ms = performance.now() - start;
  const classify_ms = [];
  for (const url of urls) {
    const blob = await (await fetch(url)).blob();
    const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none' });
    const t = performance.now();
    model.classify(bitmap, 5);
    classify_ms.push(performance.now() - t);
  }
  return { decode_ms, classify_ms };
}
"""


if __name__ == "__main__":
    main()
