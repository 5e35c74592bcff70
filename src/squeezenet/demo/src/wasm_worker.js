// One worker of wasm_threads.js's pool: engine-mt.wasm on the page's shared memory, with a
// stack of its own. It sleeps on the generation word until the page posts a convolution, claims
// and runs chunks of it (wasm_threads.js work), and sleeps again; it never returns.

import { WORDS, work } from './wasm_threads.js';

self.onmessage = ({ data }) => {
  const { module, memory, stack, ctrl } = data;
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
  k.__stack_pointer.value = stack;
  const words = new Int32Array(memory.buffer, ctrl, WORDS.count);
  let seen = Atomics.load(words, WORDS.generation);
  postMessage('ready');
  for (;;) {
    Atomics.wait(words, WORDS.generation, seen);
    seen = Atomics.load(words, WORDS.generation);
    work(k, words, seen & 0xffff);
  }
};
