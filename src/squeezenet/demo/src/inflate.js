// zlib (RFC 1950) + DEFLATE (RFC 1951) decompression, strict: exactly one complete stream with
// a correct Adler-32 and nothing after it, no preset dictionary, at most `limit` bytes out.
// The platform's DecompressionStream is not used: Node's accepts bytes after the end of the
// stream, and docs/FORMAT.md section 3 requires rejecting them everywhere.

export class InflateError extends Error {}

const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
  67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4,
  5, 5, 5, 5, 0];
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513,
  769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10,
  11, 11, 12, 12, 13, 13];
const CLEN_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

class Bits {
  constructor(data) {
    this.data = data;
    this.pos = 0; // byte
    this.bit = 0; // bit in the current byte, LSB first
  }

  read(n) {
    let v = 0;
    for (let i = 0; i < n; i++) {
      if (this.pos >= this.data.length) throw new InflateError('unexpected end of the stream');
      v |= ((this.data[this.pos] >> this.bit) & 1) << i;
      if (++this.bit === 8) {
        this.bit = 0;
        this.pos++;
      }
    }
    return v;
  }

  align() {
    if (this.bit) {
      this.bit = 0;
      this.pos++;
    }
  }
}

/** A canonical Huffman decoder from code lengths (RFC 1951 3.2.2). As zlib's inflate: an
 * over-subscribed code is an error, and so is an incomplete one, except a code of a single
 * 1-bit symbol or (`allowEmpty`, distances) no symbol at all; code-length codes must be
 * complete. */
function table(lengths, { allowEmpty = false, lengthCode = false } = {}) {
  const counts = new Array(16).fill(0);
  for (const len of lengths) counts[len]++;
  counts[0] = 0;
  let left = 1;
  let max = 0;
  for (let len = 1; len < 16; len++) {
    left = left * 2 - counts[len];
    if (left < 0) throw new InflateError('over-subscribed Huffman code');
    if (counts[len]) max = len;
  }
  if (max === 0 && !allowEmpty) throw new InflateError('a Huffman code without symbols');
  if (max > 0 && left > 0 && (lengthCode || max !== 1)) throw new InflateError('incomplete Huffman code');
  const offsets = [0, 0];
  for (let len = 1; len < 15; len++) offsets.push(offsets[len] + counts[len]);
  const symbols = new Array(lengths.length);
  lengths.forEach((len, sym) => {
    if (len) symbols[offsets[len]++] = sym;
  });
  return { counts, symbols };
}

function decodeSymbol(bits, { counts, symbols }) {
  let code = 0;
  let first = 0;
  let index = 0;
  for (let len = 1; len < 16; len++) {
    code |= bits.read(1);
    const count = counts[len];
    if (code - count < first) return symbols[index + (code - first)];
    index += count;
    first = (first + count) * 2;
    code *= 2;
  }
  throw new InflateError('invalid Huffman code');
}

let fixed = null;

function fixedTables() {
  if (fixed === null) {
    const lit = new Array(288).fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
    fixed = { lit: table(lit), dist: table(new Array(32).fill(5)) };
  }
  return fixed;
}

function dynamicTables(bits) {
  const nlit = bits.read(5) + 257;
  const ndist = bits.read(5) + 1;
  const nclen = bits.read(4) + 4;
  if (nlit > 286 || ndist > 30) throw new InflateError('too many length or distance codes');
  const clen = new Array(19).fill(0);
  for (let i = 0; i < nclen; i++) clen[CLEN_ORDER[i]] = bits.read(3);
  const clTable = table(clen, { lengthCode: true });
  const lengths = [];
  while (lengths.length < nlit + ndist) {
    const sym = decodeSymbol(bits, clTable);
    if (sym < 16) {
      lengths.push(sym);
    } else if (sym === 16) {
      if (lengths.length === 0) throw new InflateError('repeat with no previous length');
      const prev = lengths[lengths.length - 1];
      for (let n = 3 + bits.read(2); n > 0; n--) lengths.push(prev);
    } else {
      for (let n = sym === 17 ? 3 + bits.read(3) : 11 + bits.read(7); n > 0; n--) lengths.push(0);
    }
  }
  if (lengths.length > nlit + ndist) throw new InflateError('too many code lengths');
  if (lengths[256] === 0) throw new InflateError('no end-of-block code');
  return { lit: table(lengths.slice(0, nlit)), dist: table(lengths.slice(nlit), { allowEmpty: true }) };
}

function adler32(bytes, end) {
  let a = 1;
  let b = 0;
  for (let i = 0; i < end; i++) {
    a = (a + bytes[i]) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** The bytes of the single zlib stream `data`; InflateError for anything else. */
export function inflateZlib(data, limit) {
  if (data.length < 2) throw new InflateError('no zlib header');
  const cmf = data[0];
  const flg = data[1];
  if ((cmf & 15) !== 8 || cmf >> 4 > 7 || (cmf * 256 + flg) % 31 !== 0) throw new InflateError('bad zlib header');
  if (flg & 32) throw new InflateError('a preset dictionary is not allowed');
  const bits = new Bits(data.subarray(2));
  let out = new Uint8Array(Math.min(limit + 1, Math.max(1024, data.length * 4)));
  let n = 0;
  const put = (byte) => {
    if (n >= limit) throw new InflateError(`more than ${limit} bytes`);
    if (n === out.length) {
      const grown = new Uint8Array(Math.min(limit + 1, out.length * 2));
      grown.set(out);
      out = grown;
    }
    out[n++] = byte;
  };
  for (let last = 0; !last;) {
    last = bits.read(1);
    const type = bits.read(2);
    if (type === 0) {
      bits.align();
      const p = bits.pos;
      if (p + 4 > bits.data.length) throw new InflateError('unexpected end of the stream');
      const len = bits.data[p] | (bits.data[p + 1] << 8);
      const nlen = bits.data[p + 2] | (bits.data[p + 3] << 8);
      if ((len ^ 0xffff) !== nlen) throw new InflateError('stored block length check failed');
      if (p + 4 + len > bits.data.length) throw new InflateError('unexpected end of the stream');
      for (let i = 0; i < len; i++) put(bits.data[p + 4 + i]);
      bits.pos = p + 4 + len;
    } else if (type === 3) {
      throw new InflateError('invalid block type');
    } else {
      const { lit, dist } = type === 1 ? fixedTables() : dynamicTables(bits);
      for (;;) {
        const sym = decodeSymbol(bits, lit);
        if (sym < 256) {
          put(sym);
        } else if (sym === 256) {
          break;
        } else {
          const li = sym - 257;
          if (li >= 29) throw new InflateError('invalid length code');
          const length = LENGTH_BASE[li] + bits.read(LENGTH_EXTRA[li]);
          const di = decodeSymbol(bits, dist);
          if (di >= 30) throw new InflateError('invalid distance code');
          const distance = DIST_BASE[di] + bits.read(DIST_EXTRA[di]);
          if (distance > n) throw new InflateError('distance too far back');
          for (let i = 0; i < length; i++) put(out[n - distance]);
        }
      }
    }
  }
  bits.align();
  const p = bits.pos;
  if (p + 4 > bits.data.length) throw new InflateError('unexpected end of the stream (Adler-32)');
  const stored = ((bits.data[p] << 24) | (bits.data[p + 1] << 16) | (bits.data[p + 2] << 8) | bits.data[p + 3]) >>> 0;
  if (stored !== adler32(out, n)) throw new InflateError('incorrect Adler-32');
  if (p + 4 !== bits.data.length) throw new InflateError('bytes after the end of the stream');
  return out.subarray(0, n);
}
