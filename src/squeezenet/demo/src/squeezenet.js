// SqueezeNet v1.0 / v1.1 inference in plain JavaScript, from the tensors decodeSqz returns.
//
// Why plain JavaScript: the page then fetches the .sqz and ~40 kB of scripts, nothing else
// (onnxruntime-web's WebAssembly alone is ~10 MB, twenty times the model). Speed comes from the
// model's sparsity: each convolution is an im2col matrix times the layer's *non-zero* weights
// only (a third of SqueezeNet's weights after Deep Compression's pruning), with the inner loop
// over output pixels on contiguous Float32Arrays.

import { preprocessImage } from './preprocess.js';

const STEMS = {
  // conv1 stride and padding, and the Fire modules a 3x3/2 max-pool follows (models/squeezenet.py)
  'v1.0': { stride: 2, padding: 0, poolAfter: [4, 8] },
  'v1.1': { stride: 2, padding: 0, poolAfter: [3, 5] },
};
const MODELS = { squeezenet1_0: 'v1.0', squeezenet1_1: 'v1.1' };

/**
 * The network a decoded file describes, engine-independent: the stem's stride and padding, the
 * Fire modules (squeeze / expand1x1 / expand3x3 layers as decoded, {name, shape, weight, bias})
 * and where max-pools follow, and the final convolution's padding. Throws Error (one line) for
 * a file this page cannot run. Both engines (this file's and wasm_engine.js) build from it.
 */
export function describeNetwork(decoded) {
  const { header } = decoded;
  const config = header.config ?? {};
  const stemName = config.stem ?? MODELS[header.model];
  const unsupported = (what) => new Error(`this page runs SqueezeNet v1.0 / v1.1 without batch norm or bypass; the file holds ${what}`);
  if (!(stemName in STEMS)) throw unsupported(`model ${header.model} (stem ${config.stem ?? '?'})`);
  if (config.batch_norm || (config.bypass && config.bypass !== 'none') || decoded.dense.length) {
    throw unsupported('batch norm or bypass layers');
  }
  if (header.preprocess === null) throw new Error('the file records no preprocessing, so images cannot be prepared for it');
  const byName = new Map(decoded.layers.map((layer) => [layer.name, layer]));
  const need = (name) => {
    if (!byName.has(name)) throw unsupported(`no layer ${name}`);
    return byName.get(name);
  };
  const fires = [];
  for (let i = 3, number = 2; number <= 9; i++) {
    if (byName.has(`features.${i}.squeeze`)) {
      fires.push({ number, squeeze: need(`features.${i}.squeeze`), e1: need(`features.${i}.expand1x1`), e3: need(`features.${i}.expand3x3`) });
      number++;
    } else if (i > 40) {
      throw unsupported('fewer than 8 Fire modules');
    }
  }
  return {
    stem: STEMS[stemName],
    conv1: need('features.0'),
    fires,
    conv10: need('classifier.1'),
    finalPadding: config.final_conv_padding ?? 0,
    header,
  };
}

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
  const { stem, finalPadding } = net;
  const conv1 = prepare(net.conv1);
  const conv10 = prepare(net.conv10);
  const fires = net.fires.map((f) => ({ number: f.number, squeeze: prepare(f.squeeze), e1: prepare(f.e1), e3: prepare(f.e3) }));

  function forward(x) {
    // x: {c, h, w, data: Float32Array} -> logits Float32Array(num_classes)
    let t = maxPool(conv(x, conv1, stem.stride, stem.padding));
    for (const fire of fires) {
      const s = conv(t, fire.squeeze, 1, 0);
      t = concat(conv(s, fire.e1, 1, 0), conv(s, fire.e3, 1, 1));
      if (stem.poolAfter.includes(fire.number)) t = maxPool(t);
    }
    return globalAverage(conv(t, conv10, 1, finalPadding)); // dropout is the identity here
  }

  return wrapForward(net.header, forward, 'js');
}

/** The (oh, ow) of squeezenet.js's 3x3 / 2 ceil-mode max-pool of an (h, w) input. */
export function poolSize(h, w) {
  let oh = Math.ceil((h - 3) / 2) + 1;
  let ow = Math.ceil((w - 3) / 2) + 1;
  if ((oh - 1) * 2 >= h) oh--;
  if ((ow - 1) * 2 >= w) ow--;
  return [oh, ow];
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
  return { name: layer.name, out, inC, kh, kw, rows, bias: layer.bias };
}

/** Convolution + ReLU: im2col of the input, times the sparse rows. */
function conv(x, layer, stride, pad) {
  const { kh, kw, out } = layer;
  const oh = Math.floor((x.h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((x.w + 2 * pad - kw) / stride) + 1;
  const p = oh * ow;
  const cols = kh === 1 && kw === 1 && stride === 1 && pad === 0 ? x.data : im2col(x, kh, kw, stride, pad, oh, ow);
  const y = new Float32Array(out * p);
  for (let o = 0; o < out; o++) {
    const base = o * p;
    const b = layer.bias ? layer.bias[o] : 0;
    for (let q = 0; q < p; q++) y[base + q] = b;
    const { index, value } = layer.rows[o];
    for (let n = 0; n < index.length; n++) {
      const src = index[n] * p;
      const w = value[n];
      for (let q = 0; q < p; q++) y[base + q] += w * cols[src + q];
    }
    for (let q = 0; q < p; q++) if (y[base + q] < 0) y[base + q] = 0;
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
