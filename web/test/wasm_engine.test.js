// node --test web/test/ : the WebAssembly SIMD engine (engine.wasm through wasm_engine.js)
// against the scalar JavaScript engine on the shipped model: the same decoded weights, the same
// input tensors, logits within 1e-3 of their range. (tests/web/test_wasm_engine.py compares
// both with Python's forward pass on images Python prepared.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeSqz } from '../../src/squeezenet/demo/src/sqz.js';
import { buildSqueezeNet } from '../../src/squeezenet/demo/src/squeezenet.js';
import { normalise } from '../../src/squeezenet/demo/src/preprocess.js';
import { buildWasmSqueezeNet, compileEngine, wasmSimdSupported } from '../../src/squeezenet/demo/src/wasm_engine.js';
import { startThreads } from '../../src/squeezenet/demo/src/wasm_threads.js';
import { nodeWorker } from '../tools/node_worker.mjs';

const SRC = new URL('../../src/squeezenet/', import.meta.url);
const decoded = decodeSqz(readFileSync(new URL('pretrained/squeezenet1_0-dc.sqz', SRC)));
const wasmBytes = readFileSync(new URL('demo/src/engine.wasm', SRC));
const mtBytes = readFileSync(new URL('demo/src/engine-mt.wasm', SRC));

/** A deterministic crop x crop RGBA picture (smooth shapes plus noise, like a photograph's
 * statistics more than white noise), normalised as the file's preprocessing says. */
function picture(seed, pre) {
  const n = pre.crop;
  const rgba = new Uint8ClampedArray(n * n * 4);
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const [a, b, c] = [rand() * 0.2, rand() * 0.2, rand() * 6];
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const i = 4 * (y * n + x);
      rgba[i] = 128 + 100 * Math.sin(a * x + c) + 20 * rand();
      rgba[i + 1] = 128 + 100 * Math.cos(b * y) + 20 * rand();
      rgba[i + 2] = (x * y) % 256;
      rgba[i + 3] = 255;
    }
  }
  return normalise(rgba, n, pre);
}

test('WebAssembly SIMD is there (Node >= 16.4)', () => {
  assert.equal(wasmSimdSupported(), true);
});

test('the wasm engine gives the JavaScript engine\'s logits on the shipped model', async () => {
  const js = buildSqueezeNet(decoded);
  const wasm = buildWasmSqueezeNet(decoded, await compileEngine(wasmBytes));
  assert.equal(wasm.engine, 'wasm');
  assert.equal(js.engine, 'js');
  for (const seed of [1, 2]) {
    const x = picture(seed, decoded.header.preprocess);
    const a = js.forward(x);
    const b = wasm.forward(x);
    assert.equal(b.length, a.length);
    let lo = Infinity;
    let hi = -Infinity;
    let worst = 0;
    for (let i = 0; i < a.length; i++) {
      lo = Math.min(lo, a[i]);
      hi = Math.max(hi, a[i]);
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    assert.ok(hi - lo > 1, `a degenerate input (logit range ${hi - lo})`);
    assert.ok(worst <= 1e-3 * (hi - lo), `seed ${seed}: max |diff| ${worst}, range ${hi - lo}`);
  }
});

test('the wasm engine reuses its memory: repeated forwards give the same logits', async () => {
  const wasm = buildWasmSqueezeNet(decoded, await compileEngine(wasmBytes));
  const x = picture(3, decoded.header.preprocess);
  const first = wasm.forward(x);
  wasm.forward(x);
  assert.deepEqual(Array.from(wasm.forward(x)), Array.from(first));
});

test('on threads (engine-mt.wasm), the same logits bit for bit; a newer model ends the last', async () => {
  const pool = await startThreads(await compileEngine(mtBytes), 2, nodeWorker);
  try {
    const wasm = buildWasmSqueezeNet(decoded, await compileEngine(wasmBytes));
    const threaded = buildWasmSqueezeNet(decoded, pool);
    assert.equal(threaded.engine, 'wasm-mt');
    const x = picture(4, decoded.header.preprocess);
    assert.deepEqual(Array.from(threaded.forward(x)), Array.from(wasm.forward(x)));
    const newer = buildWasmSqueezeNet(decoded, pool);
    assert.throws(() => threaded.forward(x), /replaced by a newer one/);
    assert.deepEqual(Array.from(newer.forward(x)), Array.from(wasm.forward(x)));
  } finally {
    pool.close();
  }
});
