#!/bin/bash
# The paper's experiments at a budget where the plain small model converges (issue 13):
# 15 epochs of the `small` recipe (bf16 autocast) on all of CIFAR-10, evaluated on all 10,000
# test images; Table 3 and DSD with 3 seeds, Fig. 3a/3b with 2. Every command is resumable: a
# rerun skips the trials (sweeps) and phases (DSD) already in the folders, so the whole set can
# be run in pieces, across sessions, and committed as it lands. Then:
#
#   squeezenet report benchmarks/results/experiments/sweep-cifar10-15ep \
#       benchmarks/results/experiments/dsd-15ep-s0 benchmarks/results/experiments/dsd-15ep-s1 \
#       benchmarks/results/experiments/dsd-15ep-s2 benchmarks/results/experiments/sensitivity \
#       benchmarks/results/experiments/sizes -o docs/RESULTS.md
#
# About 15 hours on the 2-core AMX Xeon: a trial of the plain model is ~15 min, the wide points
# (SR 1.0, pct_3x3 0.99: up to 7x the plain model's MACs) take several times that, and each DSD
# seed is ~31 epochs. Minutes on a GPU:
#   DEVICE=cuda benchmarks/run_experiments.sh
# Trials run in this order so that a partial run already gives paired, seeded comparisons:
# Table 3 seed by seed, then Fig. 3a and Fig. 3b seed by seed, then DSD seed by seed.
set -euo pipefail
cd "$(dirname "$0")/.."
SQ=${SQUEEZENET:-squeezenet}
DEVICE=${DEVICE:-cpu}
OUT=benchmarks/results/experiments
SWEEP="$SQ sweep --data cifar10 --epochs 15 --device $DEVICE --output $OUT/sweep-cifar10-15ep -q --json"
for seed in 0 1 2; do
  $SWEEP --grid bypass=none,simple,complex --set squeeze_ratio=0.125 --set pct_3x3=0.5 --seeds $seed
done
for seed in 0 1; do
  $SWEEP --grid squeeze_ratio=0.125,0.25,0.5,0.75,1.0 --set pct_3x3=0.5 --set bypass=none --seeds $seed
done
for seed in 0 1; do
  $SWEEP --grid pct_3x3=0.01,0.25,0.5,0.75,0.99 --set squeeze_ratio=0.5 --set bypass=none --seeds $seed
done
# DSD from the converged dense model (phase 1: the same 15 epochs), 4 sparse + 4 re-dense
# epochs, against 4 + 4 epochs of dense training from the same model at the same LRs.
for seed in 0 1 2; do
  $SQ dsd squeezenet_small --data cifar10 --output "$OUT/dsd-15ep-s$seed" --sparsity 0.5 \
    --dense-epochs 15 --sparse-epochs 4 --redense-epochs 4 --seed $seed --device "$DEVICE" -q --json
done
