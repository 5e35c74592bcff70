// The wasm engine on several threads: engine-mt.wasm (web/wasm/engine.c built for a shared
// memory) instantiated on the page thread and in threads - 1 workers (wasm_worker.js) on one
// shared WebAssembly.Memory. Each convolution is shared out in chunks of output pixels
// (engine.c's conv_prepare pads once, then conv_part runs one chunk): every thread, the page's
// included, claims chunks until none is left, so a worker the OS runs late costs little (the
// others take its chunks). The page thread then spins until every chunk is done, so forward stays
// synchronous and the model object is the one-thread engine's (buildWasmSqueezeNet takes the
// pool instead of the module). Needs SharedArrayBuffer: a cross-origin isolated page
// (serve-demo sends the headers).

const PAGES = { initial: 16, maximum: 16384 }; // engine-mt.wasm's 1 MiB .. 1 GiB (build.sh)
const STACK = 65536; // each worker's own stack (build.sh's -z stack-size)
const CHUNKS_PER_THREAD = 4; // more chunks balance better; each costs a claim
// Control words (Int32), shared with wasm_worker.js, which reads them through work() below.
export const WORDS = {
  generation: 0, // bumped per convolution; workers Atomics.wait on it; its low 16 bits tag claims
  claims: 1, // (tag << 16) | chunks claimed so far; 0xffff while the next job is being set
  finished: 2, // chunks done
  chunks: 3, // of this convolution
  chunk: 4, // pixels per chunk (a multiple of engine.c's MR)
  pixels: 5, // output pixels of this convolution
  job: 6, // address of the ConvJob
  failed: 7, // a worker's error (its chunk still counts as done)
  count: 8,
};
const CLOSED = 0xffff;

/** The threads the page uses by default: the cores, at most 4 (beyond that, SqueezeNet's late
 * 13x13 layers have too few pixels to share). */
export function defaultThreads() {
  return Math.max(1, Math.min(globalThis.navigator?.hardwareConcurrency ?? 1, 4));
}

/**
 * Claim and run chunks of the convolution tagged `tag` until none is left (or a newer one has
 * replaced it: a late worker then claims nothing). The job's fields are read only after a
 * successful claim, when the page thread cannot change them: it waits for every claimed chunk.
 */
export function work(k, words, tag) {
  for (;;) {
    const claims = Atomics.load(words, WORDS.claims);
    if (claims >>> 16 !== tag || (claims & 0xffff) >= Atomics.load(words, WORDS.chunks)) return;
    if (Atomics.compareExchange(words, WORDS.claims, claims, claims + 1) !== claims) continue;
    const chunk = Atomics.load(words, WORDS.chunk);
    const q0 = (claims & 0xffff) * chunk;
    try {
      k.conv_part(Atomics.load(words, WORDS.job), q0, Math.min(q0 + chunk, Atomics.load(words, WORDS.pixels)));
    } catch (error) {
      Atomics.store(words, WORDS.failed, 1);
      console.error(error);
    }
    Atomics.add(words, WORDS.finished, 1);
  }
}

/** A browser module worker; Node passes its own (web/tools/node_worker.mjs). */
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
  const ctrl = k.alloc(4 * WORDS.count);
  const words = new Int32Array(memory.buffer, ctrl, WORDS.count);
  Atomics.store(words, WORDS.job, k.alloc(k.conv_job_bytes()));
  const mr = k.tile_pixels();
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
      worker.postMessage({ module, memory, stack, ctrl });
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
    /** A whole convolution, shared between the threads; arguments as engine.c's conv. */
    conv(...args) {
      const scratch = k.mark();
      const generation = (Atomics.load(words, WORDS.generation) + 1) | 0;
      const tag = generation & 0xffff;
      Atomics.store(words, WORDS.claims, (tag << 16) | CLOSED); // late workers of the last one stop
      const pixels = k.conv_prepare(Atomics.load(words, WORDS.job), ...args);
      const chunk = mr * Math.ceil(pixels / (mr * threads * CHUNKS_PER_THREAD));
      const chunks = Math.ceil(pixels / chunk);
      Atomics.store(words, WORDS.pixels, pixels);
      Atomics.store(words, WORDS.chunk, chunk);
      Atomics.store(words, WORDS.chunks, chunks);
      Atomics.store(words, WORDS.finished, 0);
      Atomics.store(words, WORDS.claims, tag << 16); // open
      Atomics.store(words, WORDS.generation, generation);
      Atomics.notify(words, WORDS.generation);
      work(k, words, tag);
      while (Atomics.load(words, WORDS.finished) < chunks) {
        // spin: the page thread may not Atomics.wait; the chunks still running are short
      }
      k.reset(scratch);
      if (Atomics.load(words, WORDS.failed)) throw new Error('a wasm worker failed (see the console)');
    },
    /** Stop the workers (Node's process waits for them otherwise). */
    close() {
      for (const worker of workers) worker.terminate();
    },
  };
}
