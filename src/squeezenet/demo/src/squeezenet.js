// SqueezeNet inference in plain JavaScript (every stem, batch norm, bypasses), from the layer
// list network.js describes for a decoded file.
//
// Why plain JavaScript: the page then fetches the .sqz and ~40 kB of scripts, nothing else
// (onnxruntime-web's WebAssembly alone is ~10 MB, twenty times the model). Speed comes from the
// model's sparsity: each convolution is an im2col matrix times the layer's *non-zero* weights
// only (a third of SqueezeNet's weights after Deep Compression's pruning), with the inner loop
// over output pixels on contiguous Float32Arrays.

import { describeNetwork, poolSize } from './network.js';
import { preprocessImage } from './preprocess.js';

/** The page's model object around an engine's forward ({c, h, w, data} -> logits). */
export function wrapForward(header, forward, engine) {
  return {
    engine,
    preprocess: header.preprocess,
    classes: Array.isArray(header.classes) ? header.classes : null,
    forward,
    /** Top-k of an image source (HTMLImageElement, ImageBitmap, canvas): [{index, name, p}]. */
    classify(image, k = 5) {
      const logits = forward(preprocessImage(image, header.preprocess));
      return topK(softmax(logits), k, this.classes);
    },
  };
}

/** A runnable model on this file's scalar loops; throws Error (one line) for a file this page
 * cannot run. */
export function buildSqueezeNet(decoded) {
  const net = describeNetwork(decoded);
  const ops = net.layers.map((layer) => {
    if (layer.type === 'conv') return prepare(layer);
    if (layer.type !== 'fire') return layer;
    const shortcut = layer.shortcut && prepare(layer.shortcut);
    return { ...layer, squeeze: prepare(layer.squeeze), expand1x1: prepare(layer.expand1x1), expand3x3: prepare(layer.expand3x3), shortcut };
  });

  function forward(x) {
    // x: {c, h, w, data: Float32Array} -> logits Float32Array(num_classes)
    let t = x;
    for (const op of ops) {
      if (op.type === 'conv') t = conv(t, op);
      else if (op.type === 'maxpool') t = maxPool(t);
      else if (op.type === 'gap') return globalAverage(t);
      else t = fire(t, op);
    }
    throw new Error('the layer list ends without a global average pool'); // describeNetwork's bug
  }

  return wrapForward(net.header, forward, 'js');
}

/** A Fire module: squeeze, the two expands concatenated, plus the bypass (after the ReLUs). */
function fire(x, op) {
  const s = conv(x, op.squeeze);
  const y = concat(conv(s, op.expand1x1), conv(s, op.expand3x3));
  const bypass = op.bypass === 'simple' ? x : op.shortcut && conv(x, op.shortcut);
  if (bypass) for (let i = 0; i < y.data.length; i++) y.data[i] += bypass.data[i];
  return y;
}

/** Each output channel's non-zero weights as (input row, value) pairs: the sparse rows. */
function prepare(layer) {
  const [out, inC, kh, kw] = layer.shape;
  const k = inC * kh * kw;
  const rows = [];
  for (let o = 0; o < out; o++) {
    const index = [];
    const value = [];
    for (let j = 0; j < k; j++) {
      const w = layer.weight[o * k + j];
      if (w !== 0) {
        index.push(j);
        value.push(w);
      }
    }
    rows.push({ index: Int32Array.from(index), value: Float32Array.from(value) });
  }
  const { type, name, stride, padding, relu, bias } = layer;
  return { type, name, out, inC, kh, kw, rows, bias, stride, padding, relu };
}

/** Convolution (+ ReLU where the layer has one): im2col of the input, times the sparse rows. */
function conv(x, layer) {
  const { kh, kw, out, stride, padding: pad } = layer;
  const oh = Math.floor((x.h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((x.w + 2 * pad - kw) / stride) + 1;
  const p = oh * ow;
  const cols = kh === 1 && kw === 1 && stride === 1 && pad === 0 ? x.data : im2col(x, kh, kw, stride, pad, oh, ow);
  const y = new Float32Array(out * p);
  for (let o = 0; o < out; o++) {
    const base = o * p;
    const b = layer.bias[o];
    for (let q = 0; q < p; q++) y[base + q] = b;
    const { index, value } = layer.rows[o];
    for (let n = 0; n < index.length; n++) {
      const src = index[n] * p;
      const w = value[n];
      for (let q = 0; q < p; q++) y[base + q] += w * cols[src + q];
    }
    if (layer.relu) for (let q = 0; q < p; q++) if (y[base + q] < 0) y[base + q] = 0;
  }
  return { c: out, h: oh, w: ow, data: y };
}

function im2col(x, kh, kw, stride, pad, oh, ow) {
  const p = oh * ow;
  const cols = new Float32Array(x.c * kh * kw * p);
  for (let c = 0; c < x.c; c++) {
    const plane = c * x.h * x.w;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const row = ((c * kh + ky) * kw + kx) * p;
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * stride + ky - pad;
          if (iy < 0 || iy >= x.h) continue; // stays 0
          const line = plane + iy * x.w;
          for (let ox = 0; ox < ow; ox++) {
            const ix = ox * stride + kx - pad;
            if (ix >= 0 && ix < x.w) cols[row + oy * ow + ox] = x.data[line + ix];
          }
        }
      }
    }
  }
  return cols;
}

/** 3x3 / 2 max-pool in ceil mode (as Caffe and the Python model). */
function maxPool(x) {
  const [oh, ow] = poolSize(x.h, x.w);
  const y = new Float32Array(x.c * oh * ow);
  for (let c = 0; c < x.c; c++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let m = -Infinity;
        for (let ky = 0; ky < 3; ky++) {
          const iy = oy * 2 + ky;
          if (iy >= x.h) break;
          for (let kx = 0; kx < 3; kx++) {
            const ix = ox * 2 + kx;
            if (ix >= x.w) break;
            const v = x.data[(c * x.h + iy) * x.w + ix];
            if (v > m) m = v;
          }
        }
        y[(c * oh + oy) * ow + ox] = m;
      }
    }
  }
  return { c: x.c, h: oh, w: ow, data: y };
}

function concat(a, b) {
  const data = new Float32Array(a.data.length + b.data.length);
  data.set(a.data);
  data.set(b.data, a.data.length);
  return { c: a.c + b.c, h: a.h, w: a.w, data };
}

function globalAverage(x) {
  const p = x.h * x.w;
  const out = new Float32Array(x.c);
  for (let c = 0; c < x.c; c++) {
    let s = 0;
    for (let q = 0; q < p; q++) s += x.data[c * p + q];
    out[c] = s / p;
  }
  return out;
}

export function softmax(logits) {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  const e = Array.from(logits, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export function topK(probs, k, classes) {
  return probs
    .map((p, index) => ({ index, p, name: classes ? classes[index] : String(index) }))
    .sort((a, b) => b.p - a.p || a.index - b.index)
    .slice(0, k);
}
