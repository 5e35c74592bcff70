// One worker of wasm_threads.js's pool: engine-mt.wasm on the page's shared memory, with a
// stack of its own. It sleeps on the control word until the page posts a convolution, runs its
// share (engine.c's conv_part), counts itself done and sleeps again; it never returns.

self.onmessage = ({ data }) => {
  const { module, memory, stack, ctrl, part, parts } = data;
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
  k.__stack_pointer.value = stack;
  const words = new Int32Array(memory.buffer, ctrl, 4); // generation, done, job, failed
  let seen = Atomics.load(words, 0);
  postMessage('ready');
  for (;;) {
    Atomics.wait(words, 0, seen);
    seen = Atomics.load(words, 0);
    try {
      k.conv_part(Atomics.load(words, 2), part, parts);
    } catch (error) {
      console.error(error);
      Atomics.store(words, 3, 1);
    }
    Atomics.add(words, 1, 1);
  }
};
