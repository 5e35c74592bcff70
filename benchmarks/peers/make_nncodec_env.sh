#!/usr/bin/env bash
# The peer benchmark's NNCodec environment: Fraunhofer HHI's reference implementation of
# MPEG-7 Part 17 (ISO/IEC 15938-17, Neural Network Coding), PyPI `nncodec` 2.1.3. It builds a
# C++ extension (DeepCABAC, ~4 minutes on 2 cores) and pins numpy<2, so it lives in its own
# virtual environment, never in the package's dependencies. benchmarks/bench_peers.py runs
# benchmarks/peers/nncodec_run.py with this environment's python.
#
#   bash benchmarks/peers/make_nncodec_env.sh [DIR]      # default DIR: .venv-nncodec
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-.venv-nncodec}"
python3 -m venv "$dir"
"$dir/bin/pip" install -q 'nncodec==2.1.3'
"$dir/bin/python" -c 'import nncodec.nn, numpy; print("nncodec ready, numpy", numpy.__version__)'
