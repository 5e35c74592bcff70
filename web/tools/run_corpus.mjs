// Decode every case of a corpus and print one JSON line per case: the tensor digest, or the
// error's type, field and offset. Used by tests/web/test_js_decoder.py, which builds the
// corpus (valid files, truncations, bit flips) and compares with the Python decoder.
//
//   node web/tools/run_corpus.mjs CORPUS_DIR
// CORPUS_DIR holds cases.json ([{"file": "000.sqz"}, ...]) and the files; optional
// imagenet_1k.txt is passed as the "imagenet-1k" class list.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { decodeSqz, tensorDigest, SqzFormatError } from '../../src/squeezenet/demo/src/sqz.js';

const dir = process.argv[2];
const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));
const listPath = join(dir, 'imagenet_1k.txt');
const classLists = existsSync(listPath)
  ? { 'imagenet-1k': readFileSync(listPath, 'utf8').split('\n').slice(0, -1) }
  : {};
const out = [];
for (const c of cases) {
  const bytes = readFileSync(join(dir, c.file));
  try {
    const decoded = await decodeSqz(bytes, { classLists });
    out.push({ ok: true, digest: await tensorDigest(decoded), version: decoded.version,
      model: decoded.header.model, classes: Array.isArray(decoded.header.classes) ? decoded.header.classes.length : null });
  } catch (error) {
    out.push({ ok: false, type: error instanceof SqzFormatError ? 'SqzFormatError' : error.constructor.name,
      field: error.field ?? null, offset: error.offset ?? null, message: String(error.message).slice(0, 300) });
  }
}
process.stdout.write(JSON.stringify(out));
