// The wasm engine on several threads: engine-mt.wasm (web/wasm/engine.c built for a shared
// memory) instantiated on the page thread and in threads - 1 workers (wasm_worker.js) on one
// shared WebAssembly.Memory. Each convolution is split between them by output pixels
// (engine.c's conv_prepare pads once, then every thread runs its conv_part); the page thread
// does its share, then spins until the workers are done, so forward stays synchronous and the
// model object is the one-thread engine's (buildWasmSqueezeNet takes the pool instead of the
// module). Needs SharedArrayBuffer: a cross-origin isolated page (serve-demo sends the headers).

const PAGES = { initial: 16, maximum: 16384 }; // engine-mt.wasm's 1 MiB .. 1 GiB (build.sh)
const STACK = 65536; // each worker's own stack (build.sh's -z stack-size)
const GENERATION = 0; // control words: bumped per job (workers Atomics.wait on it),
const DONE = 1; //                       workers finished with this job,
const JOB = 2; //                        the ConvJob's address,
const FAILED = 3; //                     a worker's error (it still counts itself done)

/** The threads the page uses by default: the cores, at most 4 (beyond that, SqueezeNet's late
 * 13x13 layers have too few pixels to share). */
export function defaultThreads() {
  return Math.max(1, Math.min(globalThis.navigator?.hardwareConcurrency ?? 1, 4));
}

/** A browser module worker; Node passes its own (web/tools/run_engines.mjs). */
function browserWorker(url) {
  return new Worker(url, { type: 'module' });
}

/**
 * Start the pool: engine-mt.wasm's compiled module on `threads` threads (the page's and
 * threads - 1 workers). `spawn(url)` makes a worker with postMessage, addEventListener and
 * terminate. Resolves when every worker is ready; rejects (and stops them) if one fails.
 */
export async function startThreads(module, threads, spawn = browserWorker) {
  const memory = new WebAssembly.Memory({ ...PAGES, shared: true });
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const ctrl = k.alloc(16);
  const job = k.alloc(k.conv_job_bytes());
  const words = new Int32Array(memory.buffer, ctrl, 4);
  Atomics.store(words, JOB, job);
  const workers = [];
  try {
    const ready = [];
    for (let part = 1; part < threads; part++) {
      const stack = k.alloc(STACK) + STACK; // the stack grows down from its end
      const worker = spawn(new URL('./wasm_worker.js', import.meta.url));
      workers.push(worker);
      ready.push(new Promise((resolve, reject) => {
        worker.addEventListener('message', resolve, { once: true });
        worker.addEventListener('error', (event) => reject(new Error(`a wasm worker failed to start: ${event.message ?? event}`)));
      }));
      worker.postMessage({ module, memory, stack, ctrl, part, parts: threads });
    }
    await Promise.all(ready);
  } catch (error) {
    for (const worker of workers) worker.terminate();
    throw error;
  }
  return {
    threads,
    exports: k,
    memory,
    base: k.mark(), // what a model's build resets to: the pool's own blocks lie below
    owner: null, // the model whose weights the memory holds now (buildWasmSqueezeNet)
    /** A whole convolution, split between the threads; arguments as engine.c's conv. */
    conv(...args) {
      const scratch = k.mark();
      k.conv_prepare(job, ...args);
      Atomics.store(words, DONE, 0);
      Atomics.add(words, GENERATION, 1);
      Atomics.notify(words, GENERATION);
      k.conv_part(job, 0, threads);
      while (Atomics.load(words, DONE) < threads - 1) {
        // spin: the page thread may not Atomics.wait, and a share takes well under a millisecond
      }
      k.reset(scratch);
      if (Atomics.load(words, FAILED)) throw new Error('a wasm worker failed (see the console)');
    },
    /** Stop the workers (Node's process waits for them otherwise). */
    close() {
      for (const worker of workers) worker.terminate();
    },
  };
}
