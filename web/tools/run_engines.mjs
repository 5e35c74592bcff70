// Run the page's engines (the scalar JavaScript one, engine.wasm, and engine-mt.wasm on THREADS
// threads, default 3: worker_threads stand in for the page's workers) on input tensors prepared
// elsewhere and print their logits as JSON. Used by tests/web/test_wasm_engine.py, which
// prepares the inputs with Python's preprocessing and compares with Python's forward pass.
//
//   node web/tools/run_engines.mjs MODEL.sqz INPUTS.f32 N C H W [THREADS]
// INPUTS.f32: N (C, H, W) float32 tensors, little-endian, one after the other.
// Prints {"js": [[...], ...], "wasm": [[...], ...], "wasm-mt": [[...], ...]}.
import { readFileSync } from 'node:fs';
import { decodeSqz } from '../../src/squeezenet/demo/src/sqz.js';
import { buildSqueezeNet } from '../../src/squeezenet/demo/src/squeezenet.js';
import { buildWasmSqueezeNet, compileEngine } from '../../src/squeezenet/demo/src/wasm_engine.js';
import { startThreads } from '../../src/squeezenet/demo/src/wasm_threads.js';
import { nodeWorker } from './node_worker.mjs';

const [model, inputs, ...dims] = process.argv.slice(2);
const [n, c, h, w, threads = 3] = dims.map(Number);
const decoded = decodeSqz(readFileSync(model));
const src = new URL('../../src/squeezenet/demo/src/', import.meta.url);
const pool = await startThreads(await compileEngine(readFileSync(new URL('engine-mt.wasm', src))), threads, nodeWorker);
const engines = {
  js: buildSqueezeNet(decoded),
  wasm: buildWasmSqueezeNet(decoded, await compileEngine(readFileSync(new URL('engine.wasm', src)))),
  'wasm-mt': buildWasmSqueezeNet(decoded, pool),
};
const raw = readFileSync(inputs);
const all = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
const size = c * h * w;
if (all.length !== n * size) throw new Error(`${inputs}: ${all.length} floats, expected ${n * size}`);
const out = {};
for (const [name, engine] of Object.entries(engines)) {
  out[name] = [];
  for (let i = 0; i < n; i++) {
    const data = all.slice(i * size, (i + 1) * size);
    out[name].push(Array.from(engine.forward({ c, h, w, data })));
  }
}
pool.close();
process.stdout.write(JSON.stringify(out));
