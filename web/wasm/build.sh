#!/bin/sh
# Build web/wasm/engine.c into the demo's src/squeezenet/demo/src/engine.wasm with Debian's
# clang + lld (apt-get install -y clang lld). Reproducible: no paths, dates or build ids go
# into the module, so the same clang gives the same bytes (tests/web/test_wasm_engine.py checks).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../src/squeezenet/demo/src/engine.wasm}
CLANG=${CLANG:-$(command -v clang-14 || command -v clang)}
"$CLANG" --target=wasm32 -nostdlib -O3 -msimd128 -ffreestanding -fno-builtin \
  -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--strip-all -Wl,--gc-sections \
  -Wl,--initial-memory=1048576 -Wl,--max-memory=1073741824 -Wl,--stack-first -Wl,-z,stack-size=65536 \
  -o "$out" "$here/engine.c"
