// The page: load a .sqz (the served model.sqz, or one the user picks), decode it, build the
// network on the chosen engine (WebAssembly SIMD where the browser has it, else the scalar
// JavaScript loops; ?engine=js|wasm overrides), and classify the served sample image (when the server has one) or one the user
// picks. Errors show as one line in #error. With ?selftest=1 it also runs the checks of
// tests/web/test_browser.py and posts what it found to /result.

import { decodeSqz, tensorDigest } from './sqz.js';
import { buildSqueezeNet } from './squeezenet.js';
import { buildWasmSqueezeNet, compileEngine, wasmSimdSupported } from './wasm_engine.js';

const $ = (id) => document.getElementById(id);
// wasm: the compiled engine.wasm, or null where the page runs the JavaScript engine
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

/** The engine asked for: ?engine=js|wasm, else wasm where WebAssembly SIMD validates. */
function engineWanted() {
  const asked = new URLSearchParams(location.search).get('engine');
  if (asked !== null && asked !== 'js' && asked !== 'wasm') throw new Error(`?engine=${asked}: use js or wasm`);
  return { asked, wasm: asked === 'wasm' || (asked === null && wasmSimdSupported()) };
}

/** Compiles engine.wasm (its fetch already under way) where it was chosen; a failed fetch or
 * compile falls back to JavaScript unless wasm was asked for by name. Runs after the first
 * decode: V8 compiles (and tiers up) the module on background threads, which on a 2-core machine
 * would slow the decode they overlapped. */
async function compileChosen(wanted, engineBytes) {
  if (!wanted.wasm) return;
  try {
    state.wasm = await compileEngine(await engineBytes);
  } catch (error) {
    if (wanted.asked === 'wasm') throw error;
  }
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
    + `${state.decodeMs.toFixed(0)} ms (network built in ${state.buildMs.toFixed(0)} ms); classified in ${result.ms.toFixed(0)} ms by the ${state.model.engine === 'wasm' ? 'WebAssembly SIMD' : 'JavaScript'} engine `
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
    digest: null, images: [], corrupt: null, decode_ms: state.decodeMs, build_ms: state.buildMs, engine: state.model?.engine ?? null,
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
    const wanted = engineWanted();
    // both downloads at once; the decode first, then the engine's compile (see compileChosen)
    const engineBytes = wanted.wasm ? fetchBytes('src/engine.wasm') : null;
    engineBytes?.catch(() => {}); // a failure surfaces (or falls back) in compileChosen
    const decoded = decodeModel(await fetchBytes('model.sqz'), 'model.sqz');
    await compileChosen(wanted, engineBytes);
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
