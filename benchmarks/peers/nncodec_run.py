"""Run NNCodec (MPEG-7 Part 17 reference software) on a dict of tensors; inside its own venv.

Reads an .npz of float32 tensors (state-dict keys), encodes it once per setting with NNCodec's
documented minimal API (``nncodec.nn.encode(tensors, args)`` then ``decode``), and writes, per
setting, the real ``.nnc`` bitstream and the decoded tensors (.npz), plus one JSON line each:
{"setting": ..., "bytes": ..., "encode_s": ..., "decode_s": ...}. Called by bench_peers.py.

    .venv-nncodec/bin/python benchmarks/peers/nncodec_run.py IN.npz OUT_DIR SETTINGS.json
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from nncodec import nn as nnc


def main() -> None:
    tensors_path, out_dir, settings_path = sys.argv[1:4]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = dict(np.load(tensors_path))
    for setting in json.loads(Path(settings_path).read_text()):
        name = setting.pop("name")
        tensors = {k: np.array(v, dtype=np.float32) for k, v in source.items()}
        args = {"results": str(out), "model": name, "verbose": False, **setting}
        start = time.perf_counter()
        bitstream = nnc.encode(tensors, args=args)
        encode_s = time.perf_counter() - start
        data = bytes(bitstream)
        (out / f"{name}.nnc").write_bytes(data)
        start = time.perf_counter()
        decoded = nnc.decode(bytearray(data), args=args)  # decode() takes a bytearray or a path
        decode_s = time.perf_counter() - start
        np.savez(out / f"{name}.npz", **{k: np.asarray(v, np.float32) for k, v in decoded.items()})
        record = {"setting": name, "args": setting, "bytes": len(data)}
        record.update(encode_s=round(encode_s, 3), decode_s=round(decode_s, 3))
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
