#!/bin/sh
# Build web/wasm/engine.c into the demo's two engines with Debian's clang + lld (apt-get install
# -y clang lld): src/squeezenet/demo/src/engine.wasm (one thread, its own memory) and
# engine-mt.wasm (the same code on an imported shared memory, for wasm_engine.js's threads: each
# instance, page or worker, sets its own __stack_pointer). Reproducible: no paths, dates or build
# ids go into the modules, so the same clang gives the same bytes (tests/web/test_wasm_engine.py
# checks). `sh build.sh DIR` writes both into DIR instead.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../src/squeezenet/demo/src}
CLANG=${CLANG:-$(command -v clang-14 || command -v clang)}
build() {
  "$CLANG" --target=wasm32 -nostdlib -O3 -msimd128 -ffreestanding -fno-builtin \
    -Wall -Wextra -Werror \
    -Wl,--no-entry -Wl,--strip-all -Wl,--gc-sections \
    -Wl,--initial-memory=1048576 -Wl,--max-memory=1073741824 -Wl,--stack-first -Wl,-z,stack-size=65536 \
    "$@" "$here/engine.c"
}
build -o "$out/engine.wasm"
build -matomics -mbulk-memory -mmutable-globals -Wl,--shared-memory -Wl,--import-memory \
  -Wl,--export=__stack_pointer -o "$out/engine-mt.wasm"
