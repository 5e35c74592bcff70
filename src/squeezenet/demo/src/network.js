// The network a decoded .sqz describes, as a layer list like Python's
// (squeezenet/arch/layers.py `layer_list`), engine-independent: both engines (squeezenet.js's
// scalar loops and wasm_engine.js) build from it. Batch norms are folded into their
// convolutions here, once, as squeezenet/runtime/params.py `conv_params` folds them.

// Per stem (arch/config.py STEM_LAYOUT): conv1's stride and padding, and the Fire modules a
// 3x3/2 max-pool follows.
const STEMS = {
  'v1.0': { stride: 2, padding: 0, poolAfter: [4, 8] },
  'v1.1': { stride: 2, padding: 0, poolAfter: [3, 5] },
  small: { stride: 1, padding: 1, poolAfter: [3, 5] },
};

/** The registry's defaults of every SqueezeNet (arch/registry.py) for the config fields this
 * page needs: a file's header.config lists only the fields that differ from them.
 * tests/web/test_wasm_engine.py checks this table against the Python registry. */
export const REGISTRY = {
  squeezenet1_0: { stem: 'v1.0', bypass: 'none', batch_norm: false, final_conv_padding: 0 },
  squeezenet1_0_simple_bypass: { stem: 'v1.0', bypass: 'simple', batch_norm: false, final_conv_padding: 0 },
  squeezenet1_0_complex_bypass: { stem: 'v1.0', bypass: 'complex', batch_norm: false, final_conv_padding: 0 },
  squeezenet1_1: { stem: 'v1.1', bypass: 'none', batch_norm: false, final_conv_padding: 0 },
  squeezenet1_1_simple_bypass: { stem: 'v1.1', bypass: 'simple', batch_norm: false, final_conv_padding: 0 },
  squeezenet1_1_complex_bypass: { stem: 'v1.1', bypass: 'complex', batch_norm: false, final_conv_padding: 0 },
  squeezenet_small: { stem: 'small', bypass: 'none', batch_norm: true, final_conv_padding: 0 },
};

const NUM_FIRE = 8; // fire2..fire9
const SIMPLE_BYPASS_FIRES = [3, 5, 7, 9]; // SqueezeNet Sec. 6: identity bypass around odd modules
const BATCH_NORM_EPS = 1e-5; // runtime/params.py BATCH_NORM_EPS (torch's default)

/**
 * The layers of a decoded file at inference, in order (dropout is the identity there):
 *   {type: 'conv', name, shape: [O, I, K, K], weight, bias (Float32Array, batch norm folded
 *    in), stride, padding, relu}
 *   {type: 'maxpool'}  (3x3 / 2, ceil mode)
 *   {type: 'fire', name, squeeze, expand1x1, expand3x3 (convs), bypass: 'none' | 'simple' |
 *    'complex', shortcut (a conv without ReLU, or null)}
 *   {type: 'gap'}  (global average pool: the logits)
 * Returns {layers, header}. Throws Error (one line) for a file this page cannot run.
 */
export function describeNetwork(decoded) {
  const { header } = decoded;
  const defaults = REGISTRY[header.model];
  if (defaults === undefined) {
    throw new Error(`this page runs SqueezeNets (${Object.keys(REGISTRY).join(', ')}); the file holds model ${header.model}`);
  }
  const config = { ...defaults, ...(header.config ?? {}) };
  const stem = STEMS[config.stem];
  if (stem === undefined) throw new Error(`the file's stem ${config.stem} is none of ${Object.keys(STEMS).join(', ')}`);
  if (header.preprocess === null) throw new Error('the file records no preprocessing, so images cannot be prepared for it');
  const layers = new Map(decoded.layers.map((layer) => [layer.name, layer]));
  const dense = new Map(decoded.dense.map((tensor) => [tensor.name, tensor.values]));
  const conv = (name, norm, inC, { stride = 1, padding = null, relu = true } = {}) => {
    const layer = layers.get(name);
    if (layer === undefined) throw new Error(`the file has no layer ${name}; is it a ${header.model}?`);
    if (layer.shape.length !== 4 || layer.shape[1] !== inC || layer.shape[2] !== layer.shape[3]) {
      throw new Error(`layer ${name} has shape [${layer.shape}], expected [O, ${inC}, K, K]`);
    }
    const [weight, bias] = config.batch_norm && norm !== null ? folded(layer, norm, dense) : [layer.weight, layer.bias ?? new Float32Array(layer.shape[0])];
    return { type: 'conv', name, shape: layer.shape, weight, bias, stride, padding: padding ?? (layer.shape[2] >> 1), relu };
  };

  const inC = layers.get('features.0')?.shape[1] ?? 0; // in_channels: 3 for RGB, 1 for grey
  const out = [conv('features.0', 'features.1', inC, { stride: stem.stride, padding: stem.padding }), { type: 'maxpool' }];
  let channels = out[0].shape[0];
  let index = config.batch_norm ? 4 : 3; // conv1 [, bn], relu, pool
  for (let number = 2; number < 2 + NUM_FIRE; number++) {
    const name = `features.${index}`;
    const part = (p, cin, options) => conv(`${name}.${p}`, `${name}.${p}_bn`, cin, options);
    const squeeze = part('squeeze', channels);
    const fire = { type: 'fire', name, squeeze, expand1x1: part('expand1x1', squeeze.shape[0]), expand3x3: part('expand3x3', squeeze.shape[0]) };
    const planes = fire.expand1x1.shape[0] + fire.expand3x3.shape[0];
    fire.bypass = fireBypass(config.bypass, number, channels, planes);
    fire.shortcut = fire.bypass === 'complex' ? part('shortcut', channels, { relu: false }) : null;
    if (fire.shortcut !== null && fire.shortcut.shape[0] !== planes) throw new Error(`layer ${name}.shortcut has ${fire.shortcut.shape[0]} outputs, expected ${planes}`);
    out.push(fire);
    channels = planes;
    index++;
    if (stem.poolAfter.includes(number)) {
      out.push({ type: 'maxpool' });
      index++;
    }
  }
  out.push(conv('classifier.1', null, channels, { padding: config.final_conv_padding }), { type: 'gap' });
  return { layers: out, header };
}

/** arch/layers.py `fire_bypass`: identity where the simple layout puts one and the channels
 * match, a 1x1 shortcut elsewhere under "complex", else none. */
function fireBypass(bypass, number, inplanes, outplanes) {
  if (bypass === 'none') return 'none';
  if (SIMPLE_BYPASS_FIRES.includes(number) && inplanes === outplanes) return 'simple';
  return bypass === 'complex' ? 'complex' : 'none';
}

/** A convolution's weight and bias with the batch norm `norm` folded in, float64 math then
 * float32 (runtime/params.py `conv_params`): w * g / sqrt(var + eps), (b - mean) * g /
 * sqrt(var + eps) + beta. */
function folded(layer, norm, dense) {
  const [out] = layer.shape;
  const [g, beta, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map((part) => {
    const values = dense.get(`${norm}.${part}`);
    if (values === undefined || values.length !== out) throw new Error(`the file has no batch norm tensor ${norm}.${part} of ${out} values`);
    return values;
  });
  const k = layer.weight.length / out;
  const weight = new Float32Array(layer.weight.length);
  const bias = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const scale = g[o] / Math.sqrt(variance[o] + BATCH_NORM_EPS);
    for (let j = o * k; j < (o + 1) * k; j++) weight[j] = layer.weight[j] * scale;
    bias[o] = ((layer.bias ? layer.bias[o] : 0) - mean[o]) * scale + beta[o];
  }
  return [weight, bias];
}

/** The (oh, ow) of a 3x3 / 2 ceil-mode max-pool of an (h, w) input (a window must start
 * inside the input: torch's and Caffe's rule). */
export function poolSize(h, w) {
  let oh = Math.ceil((h - 3) / 2) + 1;
  let ow = Math.ceil((w - 3) / 2) + 1;
  if ((oh - 1) * 2 >= h) oh--;
  if ((ow - 1) * 2 >= w) ow--;
  return [oh, ow];
}
