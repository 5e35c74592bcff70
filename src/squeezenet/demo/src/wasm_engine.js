// SqueezeNet on engine.wasm (web/wasm/engine.c: SIMD128 kernels, channels-last), from the same
// decoded tensors and the same network description as the scalar engine in squeezenet.js, with
// the same model object (forward, classify), so app.js runs either.
//
// Loading is split so that building stays synchronous like buildSqueezeNet: compile the module
// once (async), then buildWasmSqueezeNet instantiates it per model file and packs the weights.
// Given a thread pool instead (wasm_threads.js startThreads, engine-mt.wasm), it packs into the
// pool's shared memory and splits every convolution between the threads.

import { describeNetwork, poolSize } from './network.js';
import { wrapForward } from './squeezenet.js';

// (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)): validates only where the
// engine has WebAssembly SIMD (the probe wasm-feature-detect uses).
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/** Whether this JavaScript engine runs WebAssembly SIMD (the wasm engine's requirement). */
export function wasmSimdSupported() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** engine.wasm's bytes -> a compiled WebAssembly.Module (for buildWasmSqueezeNet). */
export async function compileEngine(bytes) {
  return WebAssembly.compile(bytes);
}

/**
 * A runnable model on engine.wasm (`engine`: its compiled module) or on a thread pool
 * (`engine`: startThreads' pool; one model at a time: building another ends this one). Throws
 * Error (one line) for a file this page cannot run.
 */
export function buildWasmSqueezeNet(decoded, engine) {
  const net = describeNetwork(decoded);
  const pool = engine instanceof WebAssembly.Module ? null : engine;
  const k = pool ? pool.exports : new WebAssembly.Instance(engine, {}).exports;
  const memory = pool ? pool.memory : k.memory;
  const runConv = pool ? pool.conv : k.conv;
  const token = {}; // this model, as the pool knows it
  if (pool) {
    k.reset(pool.base); // the last model's weights go
    pool.owner = token;
  }
  const f32 = () => new Float32Array(memory.buffer); // anew after every alloc: memory may grow
  const put = (array) => {
    const at = k.alloc(array.length * 4);
    if (at === 0) throw new Error('the wasm engine ran out of memory');
    f32().set(array, at / 4);
    return at;
  };
  const load = (layer) => {
    const [out, inC, kh, kw] = layer.shape;
    const packed = k.alloc(k.packed_floats(out, inC, kh, kw) * 4);
    const bias = put(layer.bias);
    const scratch = k.mark();
    k.pack(packed, put(layer.weight), out, inC, kh, kw);
    k.reset(scratch); // the unpacked weights are needed only while packing
    return { out, kh, kw, packed, bias, stride: layer.stride, pad: layer.padding, relu: layer.relu ? 1 : 0 };
  };
  const ops = net.layers.map((layer) => {
    if (layer.type === 'conv') return { type: 'conv', conv: load(layer) };
    if (layer.type !== 'fire') return layer;
    const shortcut = layer.shortcut && load(layer.shortcut);
    return { type: 'fire', bypass: layer.bypass, squeeze: load(layer.squeeze), e1: load(layer.expand1x1), e3: load(layer.expand3x3), shortcut };
  });

  // t: {h, w, c, at} an (H, W, C) activation at byte offset `at` of the wasm memory
  function conv(t, layer, into = null, channels = layer.out, offset = 0) {
    const h = Math.floor((t.h + 2 * layer.pad - layer.kh) / layer.stride) + 1;
    const w = Math.floor((t.w + 2 * layer.pad - layer.kw) / layer.stride) + 1;
    const at = into ?? k.alloc(h * w * channels * 4);
    runConv(t.at, t.h, t.w, t.c, layer.packed, layer.bias, layer.out, layer.kh, layer.kw, layer.stride, layer.pad, at, channels, offset, layer.relu);
    return { h, w, c: channels, at };
  }
  function maxPool(t) {
    const [h, w] = poolSize(t.h, t.w);
    const at = k.alloc(h * w * t.c * 4);
    k.maxpool(t.at, t.h, t.w, t.c, at, h, w);
    return { h, w, c: t.c, at };
  }
  function fire(t, op) {
    const s = conv(t, op.squeeze);
    const both = op.e1.out + op.e3.out; // the Fire concat: both expands write into one buffer
    const at = k.alloc(s.h * s.w * both * 4);
    conv(s, op.e1, at, both, 0);
    const y = conv(s, op.e3, at, both, op.e1.out);
    const bypass = op.bypass === 'simple' ? t : op.shortcut && conv(t, op.shortcut);
    if (bypass) k.add(y.at, bypass.at, y.h * y.w * y.c); // after the expand ReLUs (Sec. 6)
    return y;
  }

  function forward(x) {
    // x: {c, h, w, data: Float32Array (C, H, W)} -> logits Float32Array(num_classes)
    if (pool && pool.owner !== token) throw new Error('this model was replaced by a newer one on the same wasm threads');
    const start = k.mark();
    try {
      const chw = put(x.data);
      const hwc = k.alloc(x.data.length * 4);
      k.chw_to_hwc(hwc, chw, x.c, x.h, x.w);
      let t = { h: x.h, w: x.w, c: x.c, at: hwc };
      for (const op of ops) {
        if (op.type === 'conv') t = conv(t, op.conv);
        else if (op.type === 'maxpool') t = maxPool(t);
        else if (op.type === 'fire') t = fire(t, op);
        else {
          const logits = k.alloc(t.c * 4);
          k.global_average(t.at, t.h * t.w, t.c, logits);
          return f32().slice(logits / 4, logits / 4 + t.c);
        }
      }
      throw new Error('the layer list ends without a global average pool'); // describeNetwork's bug
    } finally {
      k.reset(start);
    }
  }

  return wrapForward(net.header, forward, pool ? 'wasm-mt' : 'wasm');
}
