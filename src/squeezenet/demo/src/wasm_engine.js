// SqueezeNet on engine.wasm (web/wasm/engine.c: SIMD128 kernels, channels-last), from the same
// decoded tensors and the same network description as the scalar engine in squeezenet.js, with
// the same model object (forward, classify), so app.js runs either.
//
// Loading is split so that building stays synchronous like buildSqueezeNet: compile the module
// once (async), then buildWasmSqueezeNet instantiates it per model file and packs the weights.

import { describeNetwork, wrapForward, poolSize } from './squeezenet.js';

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

/** A runnable model on engine.wasm; throws Error (one line) for a file this page cannot run. */
export function buildWasmSqueezeNet(decoded, module) {
  const net = describeNetwork(decoded);
  const k = new WebAssembly.Instance(module, {}).exports;
  const f32 = () => new Float32Array(k.memory.buffer); // anew after every alloc: memory may grow
  const put = (array) => {
    const at = k.alloc(array.length * 4);
    if (at === 0) throw new Error('the wasm engine ran out of memory');
    f32().set(array, at / 4);
    return at;
  };
  const load = (layer) => {
    const [out, inC, kh, kw] = layer.shape;
    const packed = k.alloc(k.packed_floats(out, inC, kh, kw) * 4);
    const bias = put(layer.bias ?? new Float32Array(out));
    const scratch = k.mark();
    k.pack(packed, put(layer.weight), out, inC, kh, kw);
    k.reset(scratch); // the unpacked weights are needed only while packing
    return { out, inC, kh, kw, packed, bias };
  };
  const { stem, finalPadding } = net;
  const conv1 = load(net.conv1);
  const conv10 = load(net.conv10);
  const fires = net.fires.map((f) => ({ number: f.number, squeeze: load(f.squeeze), e1: load(f.e1), e3: load(f.e3) }));

  // t: {h, w, c, at} an (H, W, C) activation at byte offset `at` of the wasm memory
  function conv(t, layer, stride, pad, into = null, channels = layer.out, offset = 0) {
    const h = Math.floor((t.h + 2 * pad - layer.kh) / stride) + 1;
    const w = Math.floor((t.w + 2 * pad - layer.kw) / stride) + 1;
    const at = into ?? k.alloc(h * w * channels * 4);
    k.conv(t.at, t.h, t.w, t.c, layer.packed, layer.bias, layer.out, layer.kh, layer.kw, stride, pad, at, channels, offset);
    return { h, w, c: channels, at };
  }
  function maxPool(t) {
    const [h, w] = poolSize(t.h, t.w);
    const at = k.alloc(h * w * t.c * 4);
    k.maxpool(t.at, t.h, t.w, t.c, at, h, w);
    return { h, w, c: t.c, at };
  }

  function forward(x) {
    // x: {c, h, w, data: Float32Array (C, H, W)} -> logits Float32Array(num_classes)
    const start = k.mark();
    try {
      const chw = put(x.data);
      const hwc = k.alloc(x.data.length * 4);
      k.chw_to_hwc(hwc, chw, x.c, x.h, x.w);
      let t = maxPool(conv({ h: x.h, w: x.w, c: x.c, at: hwc }, conv1, stem.stride, stem.padding));
      for (const fire of fires) {
        const s = conv(t, fire.squeeze, 1, 0);
        const both = fire.e1.out + fire.e3.out; // the Fire concat: both expands write into one buffer
        const at = k.alloc(s.h * s.w * both * 4);
        conv(s, fire.e1, 1, 0, at, both, 0);
        t = conv(s, fire.e3, 1, 1, at, both, fire.e1.out);
        if (stem.poolAfter.includes(fire.number)) t = maxPool(t);
      }
      t = conv(t, conv10, 1, finalPadding); // dropout is the identity here
      const logits = k.alloc(t.c * 4);
      k.global_average(t.at, t.h * t.w, t.c, logits);
      return f32().slice(logits / 4, logits / 4 + t.c);
    } finally {
      k.reset(start);
    }
  }

  return wrapForward(net.header, forward, 'wasm');
}
