// A Node worker_threads Worker that runs a page worker script (which speaks the browser's
// self.onmessage / postMessage) and looks like a browser Worker to wasm_threads.js.
import { Worker } from 'node:worker_threads';

// The worker's first message is its start message: load the page script, then hand it over.
const SHIM = `
const { parentPort, workerData } = require('node:worker_threads');
globalThis.self = globalThis;
globalThis.postMessage = (message) => parentPort.postMessage(message);
parentPort.once('message', async (data) => {
  await import(workerData);
  globalThis.onmessage({ data });
});
`;

export function nodeWorker(url) {
  const worker = new Worker(SHIM, { eval: true, workerData: String(url) });
  return {
    postMessage: (message) => worker.postMessage(message),
    addEventListener: (type, listener, options) => worker[options?.once ? 'once' : 'on'](type, (value) => listener(type === 'message' ? { data: value } : value)),
    terminate: () => worker.terminate(),
  };
}
