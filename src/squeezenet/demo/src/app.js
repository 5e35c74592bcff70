// The page: load a .sqz (the served model.sqz, or one the user picks), decode it, build the
// network on the chosen engine, and classify the served sample image (when the server has one)
// or one the user picks. Errors show as one line in #error. With ?selftest=1 it also runs the
// checks of tests/web/test_browser.py and posts what it found to /result.
//
// Engines: WebAssembly SIMD (engine.wasm) where the browser has it, else the scalar JavaScript
// loops. ?engine=js|wasm|wasm-mt overrides; wasm-mt is engine-mt.wasm on a pool of threads
// (wasm_threads.js: the page thread and workers), which needs a cross-origin isolated page
// (serve-demo sends the headers); ?threads=N sets its threads (default: the cores, at most 4).
// THREADS_BY_DEFAULT says whether an isolated page on two or more cores picks wasm-mt unasked.

import { decodeSqz, tensorDigest } from './sqz.js';
import { buildSqueezeNet } from './squeezenet.js';
import { buildWasmSqueezeNet, compileEngine, wasmSimdSupported } from './wasm_engine.js';

// On because they pay: on a quiet 2-core AMD EPYC, 2 threads classify 1.68x faster than one
// (forward 1.55x; benchmarks/results/web_engines.json). With another job holding a core they
// did not (0.87x), which a page cannot know; ?engine=wasm turns them off.
const THREADS_BY_DEFAULT = true;

const $ = (id) => document.getElementById(id);
// wasm: the compiled engine.wasm (or engine-mt.wasm's thread pool), or null where the page
// runs the JavaScript engine
// decodeMs: the .sqz decode alone; buildMs: building the network from it (packing, for wasm)
const state = { model: null, modelBytes: 0, decodeMs: 0, buildMs: 0, name: '', wasm: null };
let classLists = {};

function showError(error) {
  $('error').textContent = error ? `error: ${String(error.message ?? error).split('\n')[0]}` : '';
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The served sample photograph, or null where the server has none (a 404: no preload). */
async function fetchSample() {
  const response = await fetch('sample.jpg');
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`sample.jpg: HTTP ${response.status}`);
  return new Blob([await response.arrayBuffer()]);
}

async function loadClassLists() {
  try {
    const text = new TextDecoder().decode(await fetchBytes('imagenet_1k.txt'));
    classLists = { 'imagenet-1k': text.split('\n').slice(0, -1) };
  } catch {
    classLists = {}; // classes then show as indices
  }
}

/** The engines to try, in order (see the header), and wasm-mt's thread count (null: default). */
function enginePlan() {
  const params = new URLSearchParams(location.search);
  const asked = params.get('engine');
  if (asked !== null && !['js', 'wasm', 'wasm-mt'].includes(asked)) throw new Error(`?engine=${asked}: use js, wasm or wasm-mt`);
  const threads = params.has('threads') ? Number(params.get('threads')) : null;
  if (threads !== null && !(Number.isInteger(threads) && threads >= 1 && threads <= 64)) throw new Error(`?threads=${params.get('threads')}: use a whole number from 1 to 64`);
  let candidates = asked === null ? ['wasm', 'js'] : [asked];
  if (asked === null && !wasmSimdSupported()) candidates = ['js'];
  else if (asked === null && THREADS_BY_DEFAULT && self.crossOriginIsolated && (navigator.hardwareConcurrency ?? 1) >= 2) candidates.unshift('wasm-mt');
  return { asked, threads, candidates };
}

const ENGINE_FILES = { wasm: 'src/engine.wasm', 'wasm-mt': 'src/engine-mt.wasm' };

/** The first choice's module download, started early (null for js); a failure surfaces, or
 * falls back, in chooseEngine. */
function prefetchEngine(plan) {
  const url = ENGINE_FILES[plan.candidates[0]];
  if (url === undefined) return null;
  const bytes = fetchBytes(url);
  bytes.catch(() => {});
  return bytes;
}

/** Compiles engine.wasm, or starts engine-mt.wasm's threads, for the first candidate that
 * works; a failed fetch, compile or start falls back to the next (threads, one thread,
 * JavaScript) unless the engine was asked for by name. Runs after the first decode: V8 compiles
 * (and tiers up) the module on background threads, which on a 2-core machine slowed the decode
 * they overlapped. */
async function chooseEngine(plan, prefetched) {
  for (const [i, engine] of plan.candidates.entries()) {
    try {
      const bytes = () => (i === 0 && prefetched !== null ? prefetched : fetchBytes(ENGINE_FILES[engine]));
      if (engine === 'wasm') state.wasm = await compileEngine(await bytes());
      if (engine === 'wasm-mt') state.wasm = await startPool(await bytes(), plan.threads);
      return;
    } catch (error) {
      if (plan.asked !== null) throw error;
    }
  }
}

/** engine-mt.wasm's bytes on `threads` threads (null: the default count). */
async function startPool(bytes, threads) {
  if (!self.crossOriginIsolated) throw new Error('the wasm-mt engine needs a cross-origin isolated page (serve-demo sends its headers)');
  const { defaultThreads, startThreads } = await import('./wasm_threads.js');
  return startThreads(await compileEngine(bytes), threads ?? defaultThreads());
}

/** Decode (timed); returns the decoded file. */
function decodeModel(bytes, name) {
  const start = performance.now();
  const decoded = decodeSqz(bytes, { classLists });
  state.decodeMs = performance.now() - start;
  state.modelBytes = bytes.length;
  state.name = name;
  return decoded;
}

/** Build the network of a decoded file on the chosen engine (timed). */
function buildModel(decoded) {
  const start = performance.now();
  state.model = state.wasm ? buildWasmSqueezeNet(decoded, state.wasm) : buildSqueezeNet(decoded);
  state.buildMs = performance.now() - start;
}

/** Decode and build; returns the decoded file (for its digest). */
function loadModel(bytes, name) {
  const decoded = decodeModel(bytes, name);
  buildModel(decoded);
  return decoded;
}

async function decodeImage(blob) {
  return createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
}

function classify(bitmap) {
  const start = performance.now();
  const top = state.model.classify(bitmap, 5);
  return { top, ms: performance.now() - start };
}

function engineName(engine) {
  if (engine === 'wasm-mt') return `WebAssembly SIMD (${state.wasm.threads} threads)`;
  return engine === 'wasm' ? 'WebAssembly SIMD' : 'JavaScript';
}

function render(bitmap, blob, result) {
  $('preview').src = URL.createObjectURL(blob);
  const body = $('top5').querySelector('tbody');
  body.replaceChildren(...result.top.map(({ name, p }) => {
    const row = document.createElement('tr');
    row.innerHTML = '<td></td><td class="p"></td><td style="width:8rem"><div class="bar"></div></td>';
    row.children[0].textContent = name;
    row.children[1].textContent = `${(100 * p).toFixed(1)} %`;
    row.children[2].firstChild.style.width = `${Math.max(1, 100 * p)}%`;
    return row;
  }));
  $('facts').textContent = `${state.name}: ${state.modelBytes.toLocaleString('en')} bytes, decoded in `
    + `${state.decodeMs.toFixed(0)} ms (network built in ${state.buildMs.toFixed(0)} ms); classified in ${result.ms.toFixed(0)} ms by the ${engineName(state.model.engine)} engine `
    + `(${bitmap.width}x${bitmap.height} image)`;
}

async function classifyBlob(blob) {
  const bitmap = await decodeImage(blob);
  const result = classify(bitmap);
  render(bitmap, blob, result);
  return result;
}

async function selftest() {
  const plan = await (await fetch('selftest.json')).json();
  const report = {
    digest: null, images: [], corrupt: null, decode_ms: state.decodeMs, build_ms: state.buildMs, engine: state.model?.engine ?? null, threads: state.wasm?.threads ?? null,
    // what the page showed after loading (the served model, the sample if any)
    loaded: { error: $('error').textContent, rows: $('top5').querySelectorAll('tr').length },
  };
  report.digest = await tensorDigest(decodeSqz(await fetchBytes('model.sqz'), { classLists }));
  for (const url of plan.images) {
    const bitmap = await decodeImage(new Blob([await fetchBytes(url)]));
    const result = classify(bitmap);
    report.images.push({ url, top1: result.top[0].index, ms: result.ms });
  }
  if (plan.corrupt) {
    try {
      loadModel(await fetchBytes(plan.corrupt), plan.corrupt);
    } catch (error) {
      showError(error);
      report.corrupt = { shown: $('error').textContent, type: error.name, field: error.field ?? null, offset: error.offset ?? null };
    }
  }
  await fetch('result', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(report) });
}

async function main() {
  await loadClassLists();
  try {
    const plan = enginePlan();
    // both downloads at once; the decode first, then the engine's compile (see chooseEngine)
    const prefetched = prefetchEngine(plan);
    const decoded = decodeModel(await fetchBytes('model.sqz'), 'model.sqz');
    await chooseEngine(plan, prefetched);
    buildModel(decoded);
    const sample = await fetchSample();
    if (sample !== null) await classifyBlob(sample);
  } catch (error) {
    showError(error);
  }
  $('model-file').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    showError(null);
    try {
      loadModel(new Uint8Array(await file.arrayBuffer()), file.name);
    } catch (error) {
      showError(error);
    }
  });
  $('image-file').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    if (!file || state.model === null) return;
    showError(null);
    try {
      await classifyBlob(file);
    } catch (error) {
      showError(error);
    }
  });
  if (new URLSearchParams(location.search).has('selftest')) {
    try {
      await selftest();
    } catch (error) {
      await fetch('result', { method: 'POST', body: JSON.stringify({ failed: String(error.stack ?? error) }) });
    }
  }
  document.body.dataset.ready = '1';
}

main();
