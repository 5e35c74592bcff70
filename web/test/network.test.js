// node --test web/test/ : the layer list network.js reads off a decoded file, and its one-line
// errors for files the page cannot run. (tests/web/test_wasm_engine.py runs the networks.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeSqz } from '../../src/squeezenet/demo/src/sqz.js';
import { describeNetwork } from '../../src/squeezenet/demo/src/network.js';

const decoded = decodeSqz(readFileSync(new URL('../../src/squeezenet/pretrained/squeezenet1_0-dc.sqz', import.meta.url)));
const withHeader = (changes) => ({ ...decoded, header: { ...decoded.header, ...changes } });
const oneLine = (pattern) => (error) => error instanceof Error && pattern.test(error.message) && !error.message.includes('\n');

test('the shipped model is conv1, pool, fire2-4, pool, fire5-8, pool, fire9, conv10, average', () => {
  const types = describeNetwork(decoded).layers.map((l) => (l.type === 'fire' ? l.name : l.type));
  assert.deepEqual(types, ['conv', 'maxpool', 'features.3', 'features.4', 'features.5', 'maxpool',
    'features.7', 'features.8', 'features.9', 'features.10', 'maxpool', 'features.12', 'conv', 'gap']);
  const conv10 = describeNetwork(decoded).layers.at(-2);
  assert.equal(conv10.padding, 1); // the released Caffe model's final_conv_padding
  assert.equal(conv10.relu, true);
});

test('AlexNet and unknown models are refused in one line', () => {
  assert.throws(() => describeNetwork(withHeader({ model: 'alexnet' })), oneLine(/model alexnet/));
});

test('a missing layer or batch norm is named in one line', () => {
  assert.throws(() => describeNetwork({ ...decoded, layers: decoded.layers.filter((l) => l.name !== 'features.4.expand3x3') }), oneLine(/no layer features\.4\.expand3x3/));
  const bn = withHeader({ config: { ...decoded.header.config, batch_norm: true } });
  assert.throws(() => describeNetwork(bn), oneLine(/no layer features\.4\.squeeze|batch norm tensor features\.1\.weight/));
  const complex = withHeader({ config: { ...decoded.header.config, bypass: 'complex' } });
  assert.throws(() => describeNetwork(complex), oneLine(/no layer features\.3\.shortcut/));
});
