// A decoder of `.sqz` files, versions 1 to 4, written from docs/FORMAT.md alone.
//
// decodeSqz(bytes) checks every rule of the format and returns the header and the float32
// tensors; any malformed input raises SqzFormatError whose .field and .offset name the field
// and byte exactly as the Python decoder (squeezenet.formats) does. Sections cited below are
// those of docs/FORMAT.md. No dependencies (zlib headers: ./inflate.js); synchronous.

import { InflateError, inflateZlib } from './inflate.js';

const MAGIC = [0x89, 0x53, 0x51, 0x5a];
const VERSIONS = [1, 2, 3, 4];
const MIN_FILE_BYTES = 14;
const CRC_BYTES = 4;
const MAX_HEADER_BYTES = 1 << 20;
const MAX_HEADER_JSON_BYTES = 1 << 22;
const MAX_LAYERS = 4096;
const MAX_DENSE = 4096;
const MAX_NAME_BYTES = 255;
const MAX_NDIM = 8;
const MAX_NUMEL = 2 ** 31 - 1;
const MAX_BIAS = 1 << 24;
const MAX_BITS = 16;
const MAX_GRID_BITS = 15;
const MAX_GAP_BITS = 16;
const MAX_CODE_LENGTH = 20;
const MAX_LENGTH_WIDTH = 5;
const MIN_BLOCK_LOG2 = 4;
const MAX_BLOCK_LOG2 = 12;
const MIN_RANS_PRECISION = 2;
const MAX_RANS_PRECISION = 16;
const RANS_LOW = 65536;
const RANS_TABLE_FREE_LOG2 = 12;
const RANS_SYMBOLS_PER_BYTE = 20;
const RANS_STATE_BYTES = 4;
const MAX_DENSE_NUMEL = 2 ** 28;
const MAX_JSON_DEPTH = 64;
const VARINT_MAX = 2 ** 32 - 1;
const MAX_GAMMA_ZEROS = 16;
const GAMMA_TABLE_BYTES_PER_SYMBOL = 5;
const CODEC_RAW = 0;
const CODEC_HUFFMAN = 1;
const CODEC_RANS = 2;
const MAX_CODEC = { 1: CODEC_HUFFMAN, 2: CODEC_RANS, 3: CODEC_RANS, 4: CODEC_RANS };
const FLAG_FLOAT16 = 1;
const FLAG_BIAS = 2;
const FLAG_COMPLEMENT = 4;
const FLAG_GRID = 8;
const FLAG_BIAS16 = 16;
const FLAG_BIAS_GRID = 32; // version 4: a grid layer's bias as levels on a uniform grid
const LAYER_FLAGS = FLAG_FLOAT16 | FLAG_BIAS | FLAG_COMPLEMENT;
const LAYER_FLAGS_V3 = LAYER_FLAGS | FLAG_GRID | FLAG_BIAS16;
const LAYER_FLAGS_V4 = LAYER_FLAGS_V3 | FLAG_BIAS_GRID;
const DQ_NEXT = [[0, 2], [2, 0], [1, 3], [3, 1]];
export const STANDARD_CLASS_LISTS = { 'imagenet-1k': 1000, 'cifar-10': 10 };
const CIFAR10 = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
  'ship', 'truck'];

/** Bytes that are not a valid .sqz file: `.field` as docs/FORMAT.md names it, `.offset` the
 * byte where it starts. */
export class SqzFormatError extends Error {
  constructor(message, field, offset) {
    super(message);
    this.name = 'SqzFormatError';
    this.field = field;
    this.offset = offset;
  }
}

function fail(message, field, offset) {
  throw new SqzFormatError(`corrupt .sqz file: ${message}; re-create the file`, field, offset);
}

// ---------------------------------------------------------------- bytes (section 1)

class Reader {
  constructor(data, pos, end) {
    this.data = data;
    this.pos = pos;
    this.end = end;
  }

  u8(field, lo, hi) {
    const at = this.pos;
    if (at >= this.end) fail(`${field} at byte ${at} is past the end of its record`, field, at);
    const value = this.data[at];
    if (value < lo || value > hi) fail(`${field} ${value} at byte ${at} is outside ${lo}..${hi}`, field, at);
    this.pos += 1;
    return value;
  }

  varint(field, lo, hi) {
    const start = this.pos;
    let value = 0;
    let i = 0;
    for (; i < 5; i++) {
      if (this.pos >= this.end) fail(`${field} at byte ${start} runs past the end of its record`, field, start);
      const byte = this.data[this.pos++];
      value += (byte & 0x7f) * 2 ** (7 * i);
      if (byte < 0x80) {
        if (byte === 0 && i > 0) fail(`${field} at byte ${start} is not a minimal varint`, field, start);
        break;
      }
    }
    if (i === 5) fail(`${field} at byte ${start} is a varint longer than 5 bytes`, field, start);
    if (value < lo || value > hi) fail(`${field} ${value} at byte ${start} is outside ${lo}..${hi}`, field, start);
    return value;
  }

  take(nbytes, field) {
    if (nbytes > this.end - this.pos) {
      fail(`${field} of ${nbytes} bytes at byte ${this.pos} runs past the end of its record`, field, this.pos);
    }
    this.pos += nbytes;
    return this.data.subarray(this.pos - nbytes, this.pos);
  }
}

let crcTable = null;

/** CRC-32 (ISO-HDLC, as zlib.crc32) of `bytes`. */
export function crc32(bytes) {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** `count` values of `width` bits, MSB first, from `bytes` (bits past the end read as 0). */
function unpackBits(bytes, width, count) {
  const out = new Int32Array(count);
  let bit = 0;
  for (let i = 0; i < count; i++) {
    let v = 0;
    for (let k = 0; k < width; k++, bit++) {
      const byte = bytes[bit >> 3];
      v = (v << 1) | (byte === undefined ? 0 : (byte >> (7 - (bit & 7))) & 1);
    }
    out[i] = v;
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 of f16le values, exactly (section 1): a NaN keeps its sign and fraction. */
function widenFloat16(raw) {
  const out = new Float32Array(raw.length / 2);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) {
    const h = raw[2 * i] | (raw[2 * i + 1] << 8);
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0x1f) {
      bits[i] = (sign | 0x7f800000 | (frac << 13)) >>> 0;
    } else if (exp === 0) {
      f32[0] = frac * 2 ** -24; // subnormal half: exact in float32
      bits[i] = (u32[0] | sign) >>> 0;
    } else {
      bits[i] = (sign | ((exp + 112) << 23) | (frac << 13)) >>> 0;
    }
  }
  return out;
}

function readFloat32(raw) {
  const out = new Float32Array(raw.length / 4);
  new Uint8Array(out.buffer).set(raw); // little-endian hosts: bit for bit, NaN payloads too
  return out;
}

// ---------------------------------------------------------------- header (section 3)

function inflate(raw, at) {
  try {
    return inflateZlib(raw, MAX_HEADER_JSON_BYTES);
  } catch (error) {
    if (!(error instanceof InflateError)) throw error;
    return fail(`header at byte ${at} is not one zlib stream of <= 4 MiB: ${error.message}`, 'header', at);
  }
}

class JsonError extends Error {}

/** JSON text under section 3's restrictions, as a tagged tree: numbers keep whether they were
 * written as integers ({int: true}), objects keep their member order. */
function parseJson(text) {
  let pos = 0;
  const isSpace = (c) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  const skip = () => {
    while (pos < text.length && isSpace(text[pos])) pos++;
  };
  const expect = (word) => {
    if (text.startsWith(word, pos)) {
      pos += word.length;
      return true;
    }
    return false;
  };
  function value(depth) {
    skip();
    const c = text[pos];
    if (c === '{' || c === '[') {
      if (depth > MAX_JSON_DEPTH) throw new JsonError(`arrays and objects nest deeper than ${MAX_JSON_DEPTH}`);
      return c === '{' ? object(depth) : array(depth);
    }
    if (c === '"') return { type: 'string', value: string() };
    if (expect('true')) return { type: 'bool', value: true };
    if (expect('false')) return { type: 'bool', value: false };
    if (expect('null')) return { type: 'null', value: null };
    return number();
  }
  function object(depth) {
    pos++;
    const members = new Map();
    skip();
    if (text[pos] === '}') {
      pos++;
      return { type: 'object', value: members };
    }
    for (;;) {
      skip();
      if (text[pos] !== '"') throw new JsonError(`expected a member name at ${pos}`);
      const key = string();
      if (members.has(key)) throw new JsonError(`member name ${key.slice(0, 24)} is repeated in an object`);
      skip();
      if (text[pos++] !== ':') throw new JsonError(`expected ':' at ${pos - 1}`);
      members.set(key, value(depth + 1));
      skip();
      const c = text[pos++];
      if (c === '}') return { type: 'object', value: members };
      if (c !== ',') throw new JsonError(`expected ',' or '}' at ${pos - 1}`);
    }
  }
  function array(depth) {
    pos++;
    const items = [];
    skip();
    if (text[pos] === ']') {
      pos++;
      return { type: 'array', value: items };
    }
    for (;;) {
      items.push(value(depth + 1));
      skip();
      const c = text[pos++];
      if (c === ']') return { type: 'array', value: items };
      if (c !== ',') throw new JsonError(`expected ',' or ']' at ${pos - 1}`);
    }
  }
  function string() {
    pos++;
    let out = '';
    for (;;) {
      if (pos >= text.length) throw new JsonError('unterminated string');
      const c = text[pos++];
      if (c === '"') return out;
      if (c.charCodeAt(0) < 0x20) throw new JsonError('invalid control character in a string');
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[pos++];
      const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e in simple) {
        out += simple[e];
        continue;
      }
      if (e !== 'u') throw new JsonError('invalid escape');
      const unit = hex4();
      if (unit >= 0xd800 && unit <= 0xdbff && text.startsWith('\\u', pos)) {
        const save = pos;
        pos += 2;
        const low = hex4();
        if (low >= 0xdc00 && low <= 0xdfff) {
          out += String.fromCharCode(unit, low);
          continue;
        }
        pos = save;
      }
      if (unit >= 0xd800 && unit <= 0xdfff) throw new JsonError('a string holds an unpaired surrogate');
      out += String.fromCharCode(unit);
    }
  }
  function hex4() {
    const digits = text.slice(pos, pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) throw new JsonError('invalid \\u escape');
    pos += 4;
    return parseInt(digits, 16);
  }
  function number() {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(pos, pos + 4096));
    if (match === null || match[0] === '' || match[0] === '-') throw new JsonError(`expected a value at ${pos}`);
    const literal = match[0];
    pos += literal.length;
    if (match[2] === undefined && match[3] === undefined) {
      const big = literal.length <= 20 ? BigInt(literal) : 2n ** 63n;
      if (big < -(2n ** 63n) || big > 2n ** 63n - 1n) throw new JsonError(`integer ${literal.slice(0, 24)} is outside int64`);
      return { type: 'number', int: true, value: Number(literal) };
    }
    const v = Number(literal);
    if (!Number.isFinite(v)) throw new JsonError(`number ${literal.slice(0, 24)} is not finite`);
    return { type: 'number', int: false, value: v };
  }
  const result = value(1);
  skip();
  if (pos !== text.length) throw new JsonError(`extra data at ${pos}`);
  return result;
}

function plain(node) {
  if (node.type === 'object') {
    const out = {};
    for (const [k, v] of node.value) out[k] = plain(v);
    return out;
  }
  if (node.type === 'array') return node.value.map(plain);
  return node.value;
}

const PREPROCESS_REQUIRED = ['name', 'resize', 'crop', 'mean', 'std'];
const PREPROCESS_OPTIONAL = ['channel_order', 'value_scale', 'channels', 'interpolation'];

function preprocessProblem(node) {
  if (node.type !== 'object') return true;
  const m = node.value;
  for (const key of m.keys()) {
    if (!PREPROCESS_REQUIRED.includes(key) && !PREPROCESS_OPTIONAL.includes(key)) return true;
  }
  if (PREPROCESS_REQUIRED.some((key) => !m.has(key))) return true;
  const isInt = (n) => n.type === 'number' && n.int;
  const get = (key, dflt) => (m.has(key) ? m.get(key) : dflt);
  const channels = get('channels', { type: 'number', int: true, value: 3 });
  const order = get('channel_order', { type: 'string', value: 'RGB' });
  const scale = get('value_scale', { type: 'number', int: true, value: 1 });
  const interp = get('interpolation', { type: 'string', value: 'bilinear' });
  const ok = m.get('name').type === 'string'
    && isInt(m.get('resize')) && m.get('resize').value >= 0
    && isInt(m.get('crop')) && m.get('crop').value >= 1
    && isInt(channels) && (channels.value === 1 || channels.value === 3)
    && order.type === 'string' && (order.value === 'RGB' || order.value === 'BGR')
    && scale.type === 'number' && (scale.value === 1 || scale.value === 255)
    && interp.type === 'string' && (interp.value === 'bilinear' || interp.value === 'bicubic');
  if (!ok) return true;
  for (const key of ['mean', 'std']) {
    const v = m.get(key);
    if (v.type !== 'array' || v.value.length !== channels.value) return true;
    if (!v.value.every((n) => n.type === 'number' && (key === 'mean' || n.value > 0))) return true;
  }
  return false;
}

/** (field, message) of section 3's content rules, or null. */
function contentProblem(node) {
  const keys = ['model', 'config', 'preprocess', 'classes'];
  if (node.type !== 'object' || node.value.size !== 4 || !keys.every((k) => node.value.has(k))) {
    return ['header', ' must be an object with model, config, preprocess, classes'];
  }
  const m = node.value;
  if (m.get('model').type !== 'string' || m.get('model').value === '' || m.get('config').type !== 'object') {
    return ['header', ': model must be a non-empty string and config an object'];
  }
  if (m.get('preprocess').type !== 'null' && preprocessProblem(m.get('preprocess'))) {
    return ['header preprocess', ' is invalid (see docs/FORMAT.md section 3)'];
  }
  const classes = m.get('classes');
  if (classes.type === 'string') {
    if (!(classes.value in STANDARD_CLASS_LISTS)) return ['header classes', ` names an unknown class list ${classes.value}`];
  } else if (classes.type !== 'null' && !(classes.type === 'array' && classes.value.every((c) => c.type === 'string'))) {
    return ['header classes', ' must be a list name, a list of strings or null'];
  }
  return null;
}

function readHeader(r, classLists) {
  const kind = r.u8('header encoding', 0, 1);
  const size = r.varint('header length', 1, MAX_HEADER_BYTES);
  const at = r.pos;
  let raw = r.take(size, 'header');
  if (kind === 1) raw = inflate(raw, at);
  let tree;
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
    tree = parseJson(text);
  } catch (error) {
    fail(`header at byte ${at} is not valid (zlib-compressed) JSON: ${error.message}`, 'header', at);
  }
  const problem = contentProblem(tree);
  if (problem !== null) fail(`${problem[0]} at byte ${at}${problem[1]}`, problem[0], at);
  const header = plain(tree);
  if (header.preprocess !== null) {
    header.preprocess = {
      channel_order: 'RGB', value_scale: 1, channels: 3, interpolation: 'bilinear', ...header.preprocess,
    };
  }
  if (typeof header.classes === 'string') {
    const lists = { 'cifar-10': CIFAR10, ...classLists };
    header.classesName = header.classes;
    header.classes = lists[header.classes] ?? header.classes;
  }
  return header;
}

// ---------------------------------------------------------------- streams (section 6)

function readBlockLengths(b, what, count, block, minimum) {
  const nblocks = Math.ceil(count / block);
  const at = b.pos;
  if (nblocks > b.end - b.pos) fail(`${what} ${nblocks} block lengths at byte ${at} run past the record`, `${what} block lengths`, at);
  const lengths = [];
  for (let i = 0; i < nblocks; i++) lengths.push(b.varint(`${what} block ${i} length`, minimum, VARINT_MAX));
  const sizes = lengths.map(() => block);
  sizes[nblocks - 1] = count - block * (nblocks - 1);
  return { lengths, sizes, at };
}

function unpackTable(b, field, width, size) {
  const packed = b.take(Math.ceil((size * width) / 8), field);
  const spare = (8 - ((size * width) % 8)) % 8;
  if (spare && packed[packed.length - 1] & ((1 << spare) - 1)) {
    fail(`${field} padding bits at byte ${b.pos - 1} are not zero`, field, b.pos - 1);
  }
  return unpackBits(packed, width, size);
}

function gammaDecode(raw, count) {
  const bit = (i) => (raw[i >> 3] >> (7 - (i & 7))) & 1;
  const total = raw.length * 8;
  const values = [];
  let pos = 0;
  for (let k = 0; k < count; k++) {
    let one = pos;
    while (one < total && bit(one) === 0) one++;
    if (one >= total) return null;
    const zeros = one - pos;
    const end = one + zeros + 1;
    if (zeros > MAX_GAMMA_ZEROS || end > total) return null;
    let v = 0;
    for (let i = one; i < end; i++) v = v * 2 + bit(i);
    values.push(v - 1);
    pos = end;
  }
  for (let i = pos; i < total; i++) if (bit(i)) return null;
  if (total - pos >= 8) return null;
  return values;
}

function readRans(b, field, count, alphabet, gamma) {
  const start = b.pos;
  const bodyLen = b.end - b.pos;
  if (!(count > 0 && count <= RANS_SYMBOLS_PER_BYTE * bodyLen)) {
    fail(`${field} at byte ${start}: ${count} rANS symbols need 1..20 per body byte`, field, start);
  }
  const size = b.varint(`${field} rANS alphabet`, 2, alphabet);
  let at = b.pos;
  const precision = b.u8(`${field} rANS precision`, MIN_RANS_PRECISION, MAX_RANS_PRECISION);
  if (2 ** precision > Math.max(2 ** RANS_TABLE_FREE_LOG2, 8 * bodyLen)) {
    fail(`${field} rANS precision ${precision} at byte ${at} is too large for its body`, `${field} rANS precision`, at);
  }
  const fw = b.u8(`${field} rANS frequency width`, gamma ? 0 : 1, precision);
  const what = `${field} rANS frequencies`;
  let freqs;
  if (fw === 0) {
    const nbytes = b.varint(`${field} rANS table bytes`, 1, GAMMA_TABLE_BYTES_PER_SYMBOL * size);
    at = b.pos;
    freqs = gammaDecode(b.take(nbytes, what), size);
    if (freqs === null) fail(`${what} at byte ${at} are not ${size} gamma codes`, what, at);
  } else {
    at = b.pos;
    freqs = Array.from(unpackTable(b, what, fw, size));
  }
  const sum = freqs.reduce((a, c) => a + c, 0);
  const cap = 3 * 2 ** (precision - 2);
  if (sum !== 2 ** precision || Math.max(...freqs) > cap) {
    fail(`${what} at byte ${at} do not sum to 2**${precision} within 3/4`, what, at);
  }
  const block = 2 ** b.u8(`${field} rANS block size`, MIN_BLOCK_LOG2, MAX_BLOCK_LOG2);
  const { lengths, sizes, at: lat } = readBlockLengths(b, `${field} rANS`, count, block, RANS_STATE_BYTES);
  if (lengths.some((n, i) => n % 2 === 1 || n > RANS_STATE_BYTES + 2 * sizes[i])) {
    fail(`${field} rANS block lengths at byte ${lat} do not fit their symbol counts`, `${field} rANS block lengths`, lat);
  }
  const payload = b.take(lengths.reduce((a, c) => a + c, 0), `${field} rANS blocks`);
  if (b.pos !== b.end) fail(`${field} has bytes after its rANS blocks at byte ${b.pos}`, `${field} body`, b.pos);
  return { kind: 'rans', freqs, precision, count, block, lengths, sizes, payload };
}

function kraftOk(lengths) {
  let sum = 0;
  let used = 0;
  for (const len of lengths) {
    if (len === 0) continue;
    if (len > MAX_CODE_LENGTH) return false;
    used++;
    sum += 2 ** (MAX_CODE_LENGTH - len);
  }
  return used > 0 && sum <= 2 ** MAX_CODE_LENGTH;
}

function readHuffman(b, field, count, alphabet) {
  const start = b.pos;
  if (count === 0) fail(`${field} at byte ${start} is a Huffman stream of no symbols (must be raw)`, field, start);
  const size = b.varint(`${field} Huffman alphabet`, 1, alphabet);
  const low = b.u8(`${field} Huffman shortest code length`, 1, MAX_CODE_LENGTH);
  const lw = b.u8(`${field} Huffman length width`, 1, MAX_LENGTH_WIDTH);
  const what = `${field} Huffman code lengths`;
  let at = b.pos;
  const fields = unpackTable(b, what, lw, size);
  const lengths = Array.from(fields, (v) => (v > 0 ? v + low - 1 : 0));
  if (!kraftOk(lengths)) fail(`${what} at byte ${at} are not a prefix code`, what, at);
  const block = 2 ** b.u8(`${field} Huffman block size`, MIN_BLOCK_LOG2, MAX_BLOCK_LOG2);
  const { lengths: bits, sizes, at: lat } = readBlockLengths(b, `${field} Huffman`, count, block, 1);
  const used = lengths.filter((l) => l > 0);
  const lmin = Math.min(...used);
  const lmax = Math.max(...used);
  if (bits.some((n, i) => n < sizes[i] * lmin || n > sizes[i] * lmax)) {
    fail(`${field} Huffman block lengths at byte ${lat} do not fit their symbol counts`, `${field} Huffman block lengths`, lat);
  }
  const nbits = bits.reduce((a, c) => a + c, 0);
  const payload = b.take(Math.ceil(nbits / 8), `${field} Huffman code bits`);
  if (b.pos !== b.end) fail(`${field} has bytes after its code bits at byte ${b.pos}`, `${field} body`, b.pos);
  at = b.pos - 1;
  if (nbits % 8 && payload[payload.length - 1] & ((1 << (8 - (nbits % 8))) - 1)) {
    fail(`${field} padding bits at byte ${at} are not zero`, `${field} padding bits`, at);
  }
  return { kind: 'huffman', lengths, count, block, bits, sizes, payload };
}

function readStream(r, field, count, alphabet, width, maxCodec, gamma) {
  const offset = r.pos;
  const codec = r.u8(`${field} codec`, 0, maxCodec);
  const bodyLen = r.varint(`${field} length`, 0, VARINT_MAX);
  if (bodyLen > r.end - r.pos) fail(`${field} length ${bodyLen} at byte ${r.pos} runs past the end of the file`, `${field} length`, r.pos);
  const body = new Reader(r.data, r.pos, r.pos + bodyLen);
  r.pos += bodyLen;
  let stream;
  if (codec === CODEC_RAW) {
    const expected = Math.ceil((count * width) / 8);
    if (bodyLen !== expected) fail(`${field} length ${bodyLen} at byte ${body.pos} should be ${expected}`, `${field} length`, body.pos);
    stream = { kind: 'raw', raw: body.take(bodyLen, field), count, width };
  } else if (codec === CODEC_RANS) {
    stream = readRans(body, field, count, alphabet, gamma);
  } else {
    stream = readHuffman(body, field, count, alphabet);
  }
  return { ...stream, offset, nbytes: r.pos - offset };
}

class StreamError extends Error {}

function decodeHuffman(s) {
  // Canonical code (RFC 1951 3.2.2): per length, the first code and the symbols in order.
  const byLen = Array.from({ length: MAX_CODE_LENGTH + 1 }, () => []);
  s.lengths.forEach((len, sym) => {
    if (len > 0) byLen[len].push(sym);
  });
  const first = new Array(MAX_CODE_LENGTH + 2).fill(0);
  let code = 0;
  for (let len = 1; len <= MAX_CODE_LENGTH; len++) {
    code = (code + byLen[len - 1].length) * 2;
    first[len] = code;
  }
  const maxLen = Math.max(...s.lengths);
  const out = new Int32Array(s.count);
  const data = s.payload;
  let start = 0;
  let k = 0;
  for (let blk = 0; blk < s.bits.length; blk++) {
    let pos = start;
    let bad = false;
    for (let i = 0; i < s.sizes[blk]; i++) {
      let c = 0;
      let found = -1;
      for (let len = 1; len <= maxLen; len++) {
        const byte = data[pos >> 3];
        c = c * 2 + (byte === undefined ? 0 : (byte >> (7 - (pos & 7))) & 1);
        pos++;
        const index = c - first[len];
        if (index >= 0 && index < byLen[len].length) {
          found = byLen[len][index];
          break;
        }
      }
      if (found < 0) {
        bad = true; // an unassigned code: the block fails (Python counts 1 bit and goes on)
        pos = pos - maxLen + 1;
      }
      out[k++] = found;
    }
    if (bad || pos - start !== s.bits[blk]) throw new StreamError(`Huffman block ${blk} does not decode to its declared bits`);
    start += s.bits[blk];
  }
  return out;
}

function decodeRans(s) {
  const M = 2 ** s.precision;
  const table = new Int32Array(M);
  const cum = [];
  let c = 0;
  s.freqs.forEach((f, sym) => {
    cum.push(c);
    table.fill(sym, c, c + f);
    c += f;
  });
  const words = s.payload.length >> 1;
  const word = (i) => (i < words ? s.payload[2 * i] | (s.payload[2 * i + 1] << 8) : 0);
  const out = new Int32Array(s.count);
  let k = 0;
  let firstWord = 0;
  for (let blk = 0; blk < s.lengths.length; blk++) {
    const end = firstWord + s.lengths[blk] / 2;
    let x = word(firstWord) + word(firstWord + 1) * 65536;
    if (x < RANS_LOW) throw new StreamError(`rANS block ${blk} starts from state below 2**16`);
    let ptr = firstWord + 2;
    for (let i = 0; i < s.sizes[blk]; i++) {
      const slot = x % M;
      const sym = table[slot];
      out[k++] = sym;
      x = s.freqs[sym] * Math.floor(x / M) + slot - cum[sym];
      if (x < RANS_LOW) x = x * 65536 + word(ptr++);
    }
    if (x !== RANS_LOW || ptr !== end) throw new StreamError(`rANS block ${blk} does not decode to its declared length and final state`);
    firstWord = end;
  }
  return out;
}

function decodeRaw(s, alphabet, field) {
  const nbits = s.count * s.width;
  if (nbits % 8 && s.raw[s.raw.length - 1] & ((1 << (8 - (nbits % 8))) - 1)) {
    const at = s.offset + s.nbytes - 1;
    fail(`${field} padding bits at byte ${at} are not zero`, `${field} padding bits`, at);
  }
  const values = unpackBits(s.raw, s.width, s.count);
  for (const v of values) if (v >= alphabet) fail(`${field} at byte ${s.offset} holds symbol ${v}, over its alphabet`, field, s.offset);
  return values;
}

// ---------------------------------------------------------------- records (sections 4, 4a, 7)

function readName(r, field) {
  const size = r.varint(`${field} name length`, 1, MAX_NAME_BYTES);
  const at = r.pos;
  const raw = r.take(size, `${field} name`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    return fail(`${field} name at byte ${at} is not UTF-8`, `${field} name`, at);
  }
}

function readShape(r, field, ndim, lo, limit) {
  const dims = [];
  let numel = 1;
  for (let j = 0; j < ndim; j++) {
    const at = r.pos;
    dims.push(r.varint(`${field} dimension ${j}`, lo, limit));
    numel *= dims[j];
    if (numel > limit) fail(`${field} dimension ${j} at byte ${at} makes ${numel} values`, `${field} dimension ${j}`, at);
  }
  return dims;
}

function checkBiasLength(r, field, channels) {
  const at = r.pos;
  const count = r.varint(`${field} bias length`, 1, MAX_BIAS);
  if (count !== channels) fail(`${field} bias length ${count} at byte ${at} should be dims[0] = ${channels}`, `${field} bias length`, at);
  return count;
}

function readBias(r, field, channels, half) {
  const count = checkBiasLength(r, field, channels);
  return half ? widenFloat16(r.take(2 * count, `${field} bias`)) : readFloat32(r.take(4 * count, `${field} bias`));
}

function readLayer(r, index, version) {
  const field = `layer ${index}`;
  const offset = r.pos;
  const maxCodec = MAX_CODEC[version];
  const v3 = version >= 3;
  const name = readName(r, field);
  const ndim = r.u8(`${field} ndim`, 1, MAX_NDIM);
  const shape = readShape(r, field, ndim, 1, MAX_NUMEL);
  const numel = shape.reduce((a, c) => a * c, 1);
  const bits = r.u8(`${field} bits`, 1, MAX_BITS);
  const flagsAt = r.pos;
  const flags = r.u8(`${field} flags`, 0, 255);
  const allowed = version >= 4 ? LAYER_FLAGS_V4 : v3 ? LAYER_FLAGS_V3 : LAYER_FLAGS;
  const needs = FLAG_GRID | FLAG_BIAS;
  if (
    flags & ~allowed
    || (flags & FLAG_BIAS16 && !(flags & FLAG_BIAS))
    || (flags & FLAG_BIAS_GRID && ((flags & needs) !== needs || flags & FLAG_BIAS16))
  ) {
    fail(`${field} flags ${flags} at byte ${flagsAt} set reserved bits (or BIAS16 without BIAS, or BIASGRID without GRID and BIAS or with BIAS16)`, `${field} flags`, flagsAt);
  }
  const layer = { index, offset, name, shape, numel, bits, bias: null };
  if (flags & FLAG_GRID) return readGridLayer(r, layer, flags, flagsAt);
  const size = r.varint(`${field} codebook size`, 1, 2 ** bits);
  layer.codebook = flags & FLAG_FLOAT16
    ? widenFloat16(r.take(2 * size, `${field} codebook`))
    : readFloat32(r.take(4 * size, `${field} codebook`));
  if (flags & FLAG_BIAS) layer.bias = readBias(r, field, shape[0], Boolean(flags & FLAG_BIAS16));
  layer.stored = r.varint(`${field} stored weights`, 0, numel);
  layer.gapBits = r.u8(`${field} gap bits`, 1, MAX_GAP_BITS);
  layer.complement = Boolean(flags & FLAG_COMPLEMENT);
  const listed = layer.complement ? numel - layer.stored : layer.stored;
  const nsym = r.varint(`${field} position symbols`, listed, numel);
  layer.codes = readStream(r, `${field} code stream`, layer.stored, size, bits, maxCodec, v3);
  layer.positions = readStream(r, `${field} position stream`, nsym, 2 ** layer.gapBits, layer.gapBits, maxCodec, v3);
  return layer;
}

function readGridLayer(r, layer, flags, flagsAt) {
  const field = `layer ${layer.index}`;
  if (flags & (FLAG_FLOAT16 | FLAG_COMPLEMENT)) {
    fail(`${field} flags ${flags} at byte ${flagsAt}: a grid layer has no codebook or positions`, `${field} flags`, flagsAt);
  }
  if (layer.bits > MAX_GRID_BITS) fail(`${field} bits ${layer.bits} at byte ${flagsAt - 1} is over 15 for a grid layer`, `${field} bits`, flagsAt - 1);
  const quantizer = r.u8(`${field} quantizer`, 0, 1);
  const at = r.pos;
  const step = readFloat32(r.take(4, `${field} grid step`))[0];
  if (!(Number.isFinite(step) && step > 0)) fail(`${field} grid step ${step} at byte ${at} is not finite and > 0`, `${field} grid step`, at);
  const period = quantizer === 1 ? r.u8(`${field} state period`, 4, 16) : r.u8(`${field} state period`, 4, 4);
  if (flags & FLAG_BIAS_GRID) layer.biasGrid = readBiasGrid(r, field, layer.shape[0]);
  else if (flags & FLAG_BIAS) layer.bias = readBias(r, field, layer.shape[0], Boolean(flags & FLAG_BIAS16));
  layer.grid = { quantizer, step, period };
  layer.codes = readStream(r, `${field} level stream`, layer.numel, 2 ** layer.bits, layer.bits, CODEC_RANS, true);
  return layer;
}

/** A grid layer's bias on a grid (section 4a, version 4): its step, bits and level stream. */
function readBiasGrid(r, field, channels) {
  checkBiasLength(r, field, channels);
  const at = r.pos;
  const step = readFloat32(r.take(4, `${field} bias step`))[0];
  if (!(Number.isFinite(step) && step > 0)) fail(`${field} bias step ${step} at byte ${at} is not finite and > 0`, `${field} bias step`, at);
  const bits = r.u8(`${field} bias bits`, 1, MAX_GRID_BITS);
  const stream = readStream(r, `${field} bias stream`, channels, 2 ** bits, bits, CODEC_RANS, true);
  return { step, bits, stream };
}

function readDense(r) {
  const dense = [];
  const count = r.varint('dense tensor count', 0, MAX_DENSE);
  for (let i = 0; i < count; i++) {
    const field = `dense tensor ${i}`;
    const offset = r.pos;
    const name = readName(r, field);
    r.u8(`${field} dtype`, 0, 0);
    const ndim = r.u8(`${field} ndim`, 0, MAX_NDIM);
    const shape = readShape(r, field, ndim, 0, MAX_DENSE_NUMEL);
    const numel = shape.reduce((a, c) => a * c, 1);
    dense.push({ offset, name, shape, values: readFloat32(r.take(4 * numel, `${field} values`)) });
  }
  return dense;
}

function checkNames(layers, dense) {
  const seen = new Set();
  const records = [
    ...layers.map((p) => [`layer ${p.index}`, p.offset, p.name]),
    ...dense.map((d, i) => [`dense tensor ${i}`, d.offset, d.name]),
  ];
  for (const [what, offset, name] of records) {
    if (seen.has(name)) fail(`duplicate tensor name ${name} at byte ${offset}`, `${what} name`, offset);
    seen.add(name);
  }
  const keys = new Map();
  for (const p of layers) keys.set(`${p.name}.weight`, p);
  for (const p of layers) if (p.bias !== null || p.biasGrid) keys.set(`${p.name}.bias`, p);
  dense.forEach((d, i) => {
    if (keys.has(d.name)) fail(`dense tensor ${i} name ${d.name} at byte ${d.offset} is a layer's state-dict key`, `dense tensor ${i} name`, d.offset);
  });
}

// ---------------------------------------------------------------- decoding (sections 4, 4a, 5, 8)

/** The Huffman streams of `records` ([layer, what, stream]; grouped by block size, in order of
 * first appearance), then their rANS streams, as the reference decoder does. */
function decodeCoded(records) {
  for (const kind of ['huffman', 'rans']) {
    const groups = new Map();
    for (const rec of records) {
      if (rec[2].kind === kind && rec[2].count > 0) {
        if (!groups.has(rec[2].block)) groups.set(rec[2].block, []);
        groups.get(rec[2].block).push(rec);
      }
    }
    for (const group of groups.values()) {
      for (const [p, what, s] of group) {
        try {
          s.symbols = kind === 'huffman' ? decodeHuffman(s) : decodeRans(s);
        } catch (error) {
          if (!(error instanceof StreamError)) throw error;
          fail(`layer ${p.index} ${what} stream at byte ${s.offset}: ${error.message}`, `layer ${p.index} ${what} stream`, s.offset);
        }
      }
    }
  }
}

/** The raw streams of `records`, in order ([layer, what, stream, alphabet]). */
function decodeRawRecords(records) {
  for (const [p, what, s, alphabet] of records) {
    if (s.kind === 'raw') s.symbols = decodeRaw(s, alphabet, `layer ${p.index} ${what} stream`);
    else if (s.symbols === undefined) s.symbols = new Int32Array(0);
  }
}

function decodeSymbols(layers) {
  const records = [];
  for (const p of layers) {
    if (p.grid) {
      records.push([p, 'level', p.codes, 2 ** p.bits]);
    } else {
      records.push([p, 'code', p.codes, p.codebook.length]);
      records.push([p, 'position', p.positions, 2 ** p.gapBits]);
    }
  }
  // As the reference decoder: the code, level and position streams' Huffman then rANS blocks;
  // then every bias stream (version 4: Huffman, rANS, raw); then the other raw streams.
  decodeCoded(records);
  const biases = layers.filter((p) => p.biasGrid).map((p) => [p, 'bias', p.biasGrid.stream, 2 ** p.biasGrid.bits]);
  decodeCoded(biases);
  decodeRawRecords(biases);
  for (const [p] of biases) p.bias = gridBias(p.biasGrid);
  decodeRawRecords(records);
}

/** A bias on a grid (section 4a): level k_j times the bias step, rounded once to binary32. */
function gridBias({ step, stream }) {
  const bias = new Float32Array(stream.symbols.length);
  stream.symbols.forEach((s, j) => {
    const k = s === 0 ? 0 : s & 1 ? (s + 1) / 2 : -s / 2;
    bias[j] = Math.fround(k * step); // exact in binary64 (|k| <= 2**14, a binary32 step)
  });
  return bias;
}

function buildLayer(p) {
  if (p.grid) return buildGridLayer(p);
  const field = `layer ${p.index} position stream`;
  const at = p.positions.offset;
  const sym = p.positions.symbols;
  const escape = 2 ** p.gapBits - 1;
  const listed = [];
  let cursor = 0;
  for (let i = 0; i < sym.length; i++) {
    if (sym[i] === escape) {
      cursor += escape;
    } else {
      cursor += sym[i] + 1;
      listed.push(cursor - 1);
    }
  }
  if (sym.length && sym[sym.length - 1] === escape) fail(`${field} at byte ${at} ends with an escape symbol`, field, at);
  if (sym.length && cursor > p.numel) fail(`${field} at byte ${at} reaches past ${p.numel} weights`, field, at);
  const expected = p.complement ? p.numel - p.stored : p.stored;
  if (listed.length !== expected) fail(`${field} at byte ${at} lists ${listed.length} weights, the record says ${expected}`, field, at);
  let positions = listed;
  if (p.complement) {
    const present = new Uint8Array(p.numel).fill(1);
    for (const i of listed) present[i] = 0;
    positions = [];
    for (let i = 0; i < p.numel; i++) if (present[i]) positions.push(i);
  }
  const weight = new Float32Array(p.numel);
  const codes = p.codes.symbols;
  for (let i = 0; i < positions.length; i++) weight[positions[i]] = p.codebook[codes[i]];
  return { name: p.name, shape: p.shape, weight, bias: p.bias };
}

function buildGridLayer(p) {
  const { quantizer, step, period } = p.grid;
  const symbols = p.codes.symbols;
  const weight = new Float32Array(p.numel);
  const restart = 2 ** period;
  let state = 0;
  for (let j = 0; j < p.numel; j++) {
    const s = symbols[j];
    const k = s === 0 ? 0 : s & 1 ? (s + 1) / 2 : -s / 2;
    let m = k;
    if (quantizer === 1) {
      if (j % restart === 0) state = 0;
      const q = state >> 1;
      m = 2 * k - Math.sign(k) * q;
      state = DQ_NEXT[state][Math.abs(k) & 1];
    }
    weight[j] = Math.fround(m * step); // the exact product, rounded once to binary32
  }
  return { name: p.name, shape: p.shape, weight, bias: p.bias, grid: p.grid };
}

/** The file-size error of section 8, step 1: the file ends at byte `size`. */
function tooShort(size, where) {
  fail(`file is ${size} bytes long and ends at byte ${size}${where}; a .sqz file has at least ${MIN_FILE_BYTES} bytes`, 'file size', size);
}

/**
 * Decode a .sqz file (versions 1 to 4).
 * @param {ArrayBuffer|Uint8Array} input the file's bytes
 * @param {{classLists?: Object<string, string[]>}} options names of the standard class lists
 *   ("imagenet-1k") to fill into the header; "cifar-10" is built in
 * @returns {{version: number, header: object, layers: object[], dense: object[]}}
 *   layers: {name, shape, weight: Float32Array (C order), bias: Float32Array|null}; a grid
 *   layer also has grid {quantizer, step, period}, and its bias is float32 even when stored
 *   as levels on a grid (version 4)
 * @throws {SqzFormatError} for any malformed input
 */
export function decodeSqz(input, options = {}) {
  const data = input instanceof Uint8Array ? input : new Uint8Array(input);
  const head = data.subarray(0, MAGIC.length); // a shorter file is compared as far as it goes
  if (head.some((b, i) => b !== MAGIC[i])) {
    const hex = Array.from(head, (b) => b.toString(16).padStart(2, '0')).join('');
    const read = head.length === MAGIC.length ? hex : `${hex} (all ${head.length} bytes)`;
    throw new SqzFormatError(`not a .sqz file: magic at byte 0 is ${read}, expected 8953515a; pass a file written by write_sqz`, 'magic', 0);
  }
  if (data.length <= MAGIC.length) tooShort(data.length, ', inside the magic and version (bytes 0..4)');
  const version = data[4];
  if (!VERSIONS.includes(version)) {
    throw new SqzFormatError(`unsupported .sqz version ${version} at byte 4: this reader knows versions ${VERSIONS.join(', ')}`, 'version', 4);
  }
  if (data.length < MIN_FILE_BYTES) tooShort(data.length, '');
  const end = data.length - CRC_BYTES;
  const r = new Reader(data, 5, end);
  const stored = (data[end] | (data[end + 1] << 8) | (data[end + 2] << 16) | (data[end + 3] << 24)) >>> 0;
  if (stored !== crc32(data.subarray(0, end))) fail(`CRC32 at byte ${end} does not match the contents`, 'crc32', end);
  const header = readHeader(r, options.classLists ?? {});
  const nlayers = r.varint('layer count', 0, MAX_LAYERS);
  const parsed = [];
  for (let i = 0; i < nlayers; i++) parsed.push(readLayer(r, i, version));
  const dense = readDense(r);
  if (r.pos !== r.end) fail(`${r.end - r.pos} unexpected bytes at byte ${r.pos} before the CRC32`, 'trailing bytes', r.pos);
  checkNames(parsed, dense);
  decodeSymbols(parsed);
  const layers = parsed.map(buildLayer);
  return { version, header, layers, dense: dense.map(({ name, shape, values }) => ({ name, shape, values })) };
}

/** SHA-256 (hex) of every decoded tensor's float32 bytes: each layer's weight then its bias,
 * in file order, then each dense tensor (what `squeezenet.formats.tensor_digest` computes). */
export async function tensorDigest(decoded) {
  const parts = [];
  for (const layer of decoded.layers) {
    parts.push(layer.weight);
    if (layer.bias !== null) parts.push(layer.bias);
  }
  for (const d of decoded.dense) parts.push(d.values);
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const bytes = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    bytes.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), pos);
    pos += p.byteLength;
  }
  const hash = await globalThis.crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, '0')).join('');
}
