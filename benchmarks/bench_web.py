"""The browser demo measured in headless Chromium, per engine, beside a field engine.

Serves the page (``squeezenet serve-demo``'s server) with a ``.sqz`` and opens it in Debian's
Chromium through Playwright once per engine (``?engine=js``, ``?engine=wasm``, and
``?engine=wasm-mt``: the same wasm on the page's default threads, or ``--threads``; the server
makes the page cross-origin isolated, so they can start). For each it
reports the first view as the page counts it (every byte fetched before its first answer, the
sample photograph included; raw and each file gzipped at level 9), the ``.sqz`` decode and the
network build (the page's own cold numbers, their medians over ``--cold`` fresh loads, then
medians of ``--repeats`` warm ones), the
classify time of each of the first ``--images`` images of the shared ImageNet sample at batch 1
(the page's path: bitmap, canvas resize, forward, softmax), and the forward pass alone on the
same images prepared by Python's preprocessing.

With ``--ort`` (an unpacked ``npm pack onnxruntime-web``), the field reference: onnxruntime-web's
wasm SIMD backend runs the ONNX graph built from the same decoded weights
(``runtime.onnx_graph.build_graph``) on the same Python-prepared tensors, in a separate page
(``benchmarks/web_ort/``, never in the demo) served cross-origin isolated so that its threads
can run; it reports the forward times and the bytes of the ORT files it fetched.

    python benchmarks/bench_web.py --images 20 --ort /tmp/ortweb/package \
        > benchmarks/results/web_engines.json

Needs ``apt-get install -y chromium`` and ``pip install playwright`` (only this script uses
Playwright; the tests drive Chromium without it). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from squeezenet.arch.layers import layer_list
from squeezenet.demo.serve import DemoFiles, make_server, shipped_model
from squeezenet.experiments.provenance import command_line, machine
from squeezenet.runtime import images as runtime_images
from squeezenet.runtime.classifier import make_network
from squeezenet.runtime.model_file import read_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ORT_PAGE = Path(__file__).resolve().parent / "web_ort" / "index.html"
TIMEOUT_MS = 300_000


def main() -> None:
    args = _parse()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("bench_web: Chromium missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("bench_web: Playwright missing (pip install playwright)")
    paths = sorted((SHARED / "imagenet-sample").glob("*.jpg"))[: args.images]
    model = read_model(args.model)
    assert model.preprocess is not None
    tensors = runtime_images.prepare(paths, model.preprocess)  # (N, 3, 227, 227) float32
    expected = make_network(model)(tensors)  # (N, classes): the numpy runtime's logits
    plan = dict(zip("nchw", map(int, tensors.shape), strict=True))
    tensor_bytes = tensors.astype("<f4").tobytes()
    extra: dict[str, Path | bytes] = {f"/images/{p.name}": p for p in paths}
    extra["/tensors.f32"] = tensor_bytes
    document: dict[str, Any] = {
        "command": command_line(sys.argv),
        "machine": machine(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "model": Path(args.model).name,  # the file's name: paths differ between checkouts
        "images": len(paths),
        "engines": {},
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        document["browser"] = f"Chromium {browser.version} (Debian), headless, via Playwright"
        for engine in ("js", "wasm", "wasm-mt"):
            files = DemoFiles(Path(args.model), extra)
            result = _page_run(
                browser, files, engine, paths, plan, args.repeats, args.screenshot, args.threads
            )
            result.update(_cold_loads(browser, files, engine, args.cold, args.threads))
            result["forward_max_error"] = _max_error(result.pop("logits"), expected)
            document["engines"][engine] = result
        if args.ort:
            graph = _onnx_bytes(model)
            document["onnx_graph_bytes"] = len(graph)
            for threads in sorted({1, os.cpu_count() or 1}):
                result = _ort_run(browser, Path(args.ort), graph, tensor_bytes, plan, threads)
                result["forward_max_error"] = _max_error(result.pop("logits"), expected)
                document["engines"][f"onnxruntime-web-{threads}t"] = result
        browser.close()
    js, wasm = document["engines"]["js"], document["engines"]["wasm"]
    document["wasm_speedup_classify"] = js["classify_ms_median"] / wasm["classify_ms_median"]
    document["wasm_speedup_forward"] = js["forward_ms_median"] / wasm["forward_ms_median"]
    mt = document["engines"]["wasm-mt"]
    document["threads_speedup_classify"] = wasm["classify_ms_median"] / mt["classify_ms_median"]
    document["threads_speedup_forward"] = wasm["forward_ms_median"] / mt["forward_ms_median"]
    print(json.dumps(document, indent=2))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(shipped_model()))
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="warm decode/build repeats")
    parser.add_argument(
        "--cold", type=int, default=5, help="cold page loads per engine (fresh browser context)"
    )
    parser.add_argument("--threads", type=int, default=None, help="wasm-mt's (default: page's)")
    parser.add_argument("--ort", default=None, help="unpacked onnxruntime-web npm package")
    parser.add_argument("--screenshot", default=None, help="PNG of the wasm page after loading")
    return parser.parse_args()


def _cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
    return found.group(1).strip() if found else "unknown"


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(np.ceil(0.9 * len(ordered))) - 1)]
    return {"median": statistics.median(ordered), "p90": p90, "min": ordered[0]}


def _max_error(logits: list[list[float]], expected: np.ndarray) -> float:
    """Largest |logit - numpy runtime's logit| relative to that image's logit range."""
    got = np.asarray(logits, np.float32)
    spread = expected.max(1) - expected.min(1)
    return float((np.abs(got - expected).max(1) / spread).max())


def _recorder(page: Any, into: list[dict[str, Any]]) -> None:
    """Append every finished request's path and bytes (its Content-Length: both servers send
    one; Playwright cannot read back the bodies of streamed-compiled wasm) to ``into``."""

    def record(request: Any) -> None:
        if request.url.startswith(("blob:", "data:")):
            return
        response = request.response()
        length = response.header_value("content-length") if response is not None else None
        path = "/" + request.url.split("/", 3)[-1].split("?", 1)[0]
        into.append({"url": path, "bytes": int(length or 0)})

    page.on("requestfinished", record)


def _gzipped(fetched: list[dict[str, Any]], lookup: Any) -> list[dict[str, Any]]:
    """``fetched`` with each file's size gzipped at level 9 (the body served for its path)."""
    out = []
    for f in fetched:
        found = lookup(f["url"])
        body = b"" if found is None else found if isinstance(found, bytes) else found.read_bytes()
        out.append({**f, "gzip_bytes": len(gzip.compress(body, 9, mtime=0))})
    return out


def _page_run(
    browser: Any,
    files: DemoFiles,
    engine: str,
    paths: list[Path],
    plan: dict[str, int],
    repeats: int,
    screenshot: str | None,
    threads: int | None,
) -> dict[str, Any]:
    server = make_server(files, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/?engine={engine}"
    if engine == "wasm-mt" and threads is not None:
        url += f"&threads={threads}"
    fetched: list[dict[str, Any]] = []
    page = browser.new_page(viewport={"width": 1000, "height": 600})
    _recorder(page, fetched)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT_MS)
    facts = page.inner_text("#facts")
    # what the first view fetched (the timings fetch again)
    first_view = _gzipped(list(fetched), files.lookup)
    if screenshot and engine == "wasm":
        page.screenshot(path=screenshot, full_page=True)
    urls = [f"images/{p.name}" for p in paths]
    timings = page.evaluate(_TIMING_SCRIPT, [engine, urls, plan, repeats, threads])
    page.close()
    server.shutdown()
    server.server_close()
    assert timings["engine"] == engine, timings["engine"]
    cold = re.search(_FACTS, facts)
    return {
        "facts": facts,
        "threads": timings["threads"],
        "page_decode_ms": int(cold.group(1)) if cold else None,
        "page_build_ms": int(cold.group(2)) if cold else None,
        "page_first_classify_ms": int(cold.group(3)) if cold else None,
        "decode_ms_median": statistics.median(timings["decode_ms"]),
        "build_ms_median": statistics.median(timings["build_ms"]),
        "classify_ms": timings["classify_ms"],
        "classify_ms_median": _stats(timings["classify_ms"])["median"],
        "classify_ms_p90": _stats(timings["classify_ms"])["p90"],
        "forward_ms": timings["forward_ms"],
        "forward_ms_median": _stats(timings["forward_ms"])["median"],
        "forward_ms_p90": _stats(timings["forward_ms"])["p90"],
        "first_view": first_view,
        "first_view_bytes": sum(f["bytes"] for f in first_view),
        "first_view_gzip_bytes": sum(f["gzip_bytes"] for f in first_view),
        "logits": timings["logits"],
    }


def _cold_loads(
    browser: Any, files: DemoFiles, engine: str, count: int, threads: int | None
) -> dict[str, Any]:
    """The page's own cold numbers (its #facts line) over ``count`` loads, each in a fresh
    browser context (no code cache: the server sends no-store), as medians and each run's."""
    server = make_server(files, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/?engine={engine}"
    if engine == "wasm-mt" and threads is not None:
        url += f"&threads={threads}"
    runs: list[tuple[int, int, int]] = []
    for _ in range(max(1, count)):
        context = browser.new_context(viewport={"width": 1000, "height": 600})
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT_MS)
        found = re.search(_FACTS, page.inner_text("#facts"))
        context.close()
        assert found is not None, "the page showed no timings"
        runs.append((int(found.group(1)), int(found.group(2)), int(found.group(3))))
    server.shutdown()
    server.server_close()
    decode, build, classify = ([run[i] for run in runs] for i in range(3))
    return {
        "cold_loads": count,
        "cold_decode_ms": decode,
        "cold_decode_ms_median": statistics.median(decode),
        "cold_build_ms_median": statistics.median(build),
        "cold_first_classify_ms_median": statistics.median(classify),
    }


# the page's own (cold) numbers, in its #facts line
_FACTS = r"decoded in (\d+) ms \(network built in (\d+) ms\); classified in (\d+)"

# Runs in the page after its first answer: decode and build again (warm, `repeats` times), then
# classify each image the page's way and run the forward pass alone on Python's tensors
# (wasm-mt: on a pool of its own, the page's threads idle meanwhile).
_TIMING_SCRIPT = """
async ([engine, urls, plan, repeats, threads]) => {
  const { decodeSqz } = await import('./src/sqz.js');
  const { buildSqueezeNet } = await import('./src/squeezenet.js');
  const { buildWasmSqueezeNet, compileEngine } = await import('./src/wasm_engine.js');
  const get = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
  const bytes = await get('model.sqz');
  let module = engine === 'wasm' ? await compileEngine(await get('src/engine.wasm')) : null;
  if (engine === 'wasm-mt') {
    const { defaultThreads, startThreads } = await import('./src/wasm_threads.js');
    const mt = await compileEngine(await get('src/engine-mt.wasm'));
    module = await startThreads(mt, threads ?? defaultThreads());
  }
  const decode_ms = [], build_ms = [];
  let model = null;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const decoded = decodeSqz(bytes);
    const t1 = performance.now();
    model = module ? buildWasmSqueezeNet(decoded, module) : buildSqueezeNet(decoded);
    build_ms.push(performance.now() - t1);
    decode_ms.push(t1 - t0);
  }
  const classify_ms = [];
  for (const url of urls) {
    const blob = new Blob([await get(url)]);
    const options = { colorSpaceConversion: 'none', premultiplyAlpha: 'none' }; // as app.js
    const bitmap = await createImageBitmap(blob, options);
    const t = performance.now();
    model.classify(bitmap, 5);
    classify_ms.push(performance.now() - t);
  }
  const raw = await get('tensors.f32');
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  const size = plan.c * plan.h * plan.w;
  const forward_ms = [], logits = [];
  for (let i = 0; i < plan.n; i++) {
    const x = { c: plan.c, h: plan.h, w: plan.w, data: all.slice(i * size, (i + 1) * size) };
    const t = performance.now();
    const out = model.forward(x);
    forward_ms.push(performance.now() - t);
    logits.push(Array.from(out));
  }
  const used = module?.threads ?? null; // a pool's; a compiled module has none
  module?.close?.();
  return {
    engine: model.engine, threads: used, decode_ms, build_ms, classify_ms, forward_ms, logits,
  };
}
"""


def _onnx_bytes(model: Any) -> bytes:
    """The ONNX graph of ``model``'s decoded weights, as ``make_network`` builds it."""
    from squeezenet.runtime.onnx_graph import build_graph

    crop = model.preprocess.crop
    shape = (model.preprocess.channels, crop, crop)
    graph = build_graph(layer_list(model.model_config()), model.weights, shape)
    return bytes(graph.SerializeToString())


def _ort_run(
    browser: Any, package: Path, graph: bytes, tensors: bytes, plan: dict[str, int], threads: int
) -> dict[str, Any]:
    dist = package / "dist" if (package / "dist").is_dir() else package
    version = json.loads((dist.parent / "package.json").read_text())["version"]
    served: dict[str, bytes | Path] = {
        "/": ORT_PAGE,
        "/model.onnx": graph,
        "/tensors.f32": tensors,
        "/plan.json": json.dumps(plan).encode(),
    }

    def lookup(path: str) -> bytes | Path | None:
        if path.startswith("/ort/") and "/" not in path[5:]:
            return dist / path[5:] if (dist / path[5:]).is_file() else None
        return served.get(path)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            found = lookup(path)
            if found is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body = found if isinstance(found, bytes) else found.read_bytes()
            kind = {".html": "text/html", ".mjs": "text/javascript", ".wasm": "application/wasm"}
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", kind.get(Path(path).suffix, "text/html"))
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            # cross-origin isolation: SharedArrayBuffer, so ORT's wasm threads can start
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fetched: list[dict[str, Any]] = []
    page = browser.new_page()
    _recorder(page, fetched)
    page.goto(f"http://127.0.0.1:{server.server_address[1]}/?threads={threads}")
    page.wait_for_function("window.benchResult !== undefined", timeout=TIMEOUT_MS)
    result: dict[str, Any] = page.evaluate("window.benchResult")
    page.close()
    server.shutdown()
    server.server_close()
    assert "failed" not in result, result.get("failed")
    ort_files = _gzipped([f for f in fetched if f["url"].startswith("/ort/")], lookup)
    times = result["forward_ms"]
    return {
        "onnxruntime_web": version,
        "backend": "wasm (SIMD), graphOptimizationLevel all",
        "threads": result["threads"],
        "cross_origin_isolated": result["isolated"],
        "session_ms": result["session_ms"],
        "first_run_ms": result["first_run_ms"],
        "forward_ms": times,
        "forward_ms_median": _stats(times)["median"],
        "forward_ms_p90": _stats(times)["p90"],
        "ort_files": ort_files,
        "ort_bytes": sum(f["bytes"] for f in ort_files),
        "ort_gzip_bytes": sum(f["gzip_bytes"] for f in ort_files),
        "logits": result["logits"],
    }


if __name__ == "__main__":
    main()
