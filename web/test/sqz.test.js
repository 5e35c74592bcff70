// node --test web/test/ : the decoder on docs/FORMAT.md's worked examples, and a fuzz loop in
// which truncations and bit flips may only ever raise SqzFormatError. (The comparison with the
// Python decoder, field by field, is tests/web/test_js_decoder.py.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSqz, SqzFormatError, crc32 } from '../../src/squeezenet/demo/src/sqz.js';

const hex = (s) => Uint8Array.from(s.match(/../g), (b) => parseInt(b, 16));
// Section 11: encode_sqz(tiny_model(), codec="raw", gap_bits=2)
const GOLDEN_RAW = hex(
  '8953515a02004f7b22636c6173736573223a5b22636174222c22646f67225d2c22636f6e666967223a7b2277'
  + '69647468223a317d2c226d6f64656c223a2274696e79222c2270726570726f63657373223a6e756c6c7d0204'
  + '636f6e760402010202020203000000000000003f000080bf020000803e000000bf03020400016400014c0266'
  + '63020304020404000000000000803f00000040000040400a020500035597500002fc400107626e2e6d65616e'
  + '0001020000803f0000004045fb3d55',
);

function withCrc(body) {
  const out = new Uint8Array(body.length + 4);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body), true);
  return out;
}

function gridFile(version, record) {
  const header = new TextEncoder().encode('{"classes":null,"config":{},"model":"tiny","preprocess":null}');
  return withCrc(Uint8Array.from([0x89, 0x53, 0x51, 0x5a, version, 0, header.length, ...header, 1, ...record, 0]));
}

// Section 11's version-3 example: levels 1, -1, 2, 0, -2, 3 (dependent, step 0.5), f16 bias.
function v3File() {
  return gridFile(3, hex('04636f6e76' + '020203' + '031a' + '01' + '0000003f' + '04' + '02003400b8' + '0003298940'));
}

// The same layer with its bias on a grid (version 4): levels 1, -2 at bias step 0.25, 3 bits.
function v4File() {
  return gridFile(4, hex('04636f6e76' + '020203' + '032a' + '01' + '0000003f' + '04'
    + '02' + '0000803e' + '03' + '000130' + '0003298940'));
}

test('the version-2 example decodes to its documented layers', () => {
  const d = decodeSqz(GOLDEN_RAW);
  assert.equal(d.version, 2);
  assert.deepEqual(d.header.classes, ['cat', 'dog']);
  const conv = d.layers[0];
  assert.deepEqual(conv.shape, [2, 1, 2, 2]);
  assert.deepEqual(Array.from(conv.weight), [0, 0.5, -1, 0, 0, 0, 0.5, 0]);
  assert.deepEqual(Array.from(conv.bias), [0.25, -0.5]);
  assert.equal(d.dense[0].name, 'bn.mean');
});

test('the version-3 grid example follows the state machine', () => {
  const d = decodeSqz(v3File());
  assert.deepEqual(Array.from(d.layers[0].weight), [1, -0.5, 1.5, 0, -1.5, 2.5]);
  assert.deepEqual(Array.from(d.layers[0].bias), [0.25, -0.5]);
});

test('a version-4 bias on a grid decodes to levels times its step', () => {
  const d = decodeSqz(v4File());
  assert.equal(d.version, 4);
  assert.deepEqual(Array.from(d.layers[0].weight), [1, -0.5, 1.5, 0, -1.5, 2.5]);
  assert.deepEqual(Array.from(d.layers[0].bias), [0.25, -0.5]);
  const v3 = v4File();
  v3[4] = 3; // BIASGRID is a reserved bit before version 4
  assert.throws(() => decodeSqz(withCrc(v3.subarray(0, v3.length - 4))), { field: 'layer 0 flags' });
});

test('truncations and bit flips raise SqzFormatError and nothing else', () => {
  let seed = 12345;
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  let cases = 0;
  for (const file of [GOLDEN_RAW, v3File(), v4File()]) {
    for (let cut = 0; cut < file.length; cut++) {
      const variants = [file.subarray(0, cut), withCrc(file.subarray(0, Math.max(0, cut - 4)))];
      for (const bytes of variants) {
        assert.throws(() => decodeSqz(bytes), SqzFormatError);
        cases++;
      }
    }
    for (let k = 0; k < 300; k++) {
      const flipped = file.slice();
      flipped[random(flipped.length - 4)] ^= 1 << random(8);
      const deep = withCrc(flipped.subarray(0, flipped.length - 4));
      for (const bytes of [flipped, deep]) {
        try {
          decodeSqz(bytes);
        } catch (error) {
          assert.ok(error instanceof SqzFormatError, `${error.name}: ${error.message}`);
          assert.equal(typeof error.field, 'string');
          assert.ok(Number.isInteger(error.offset) && error.offset >= 0 && error.offset < bytes.length);
        }
        cases++;
      }
    }
  }
  assert.ok(cases > 1000);
});
