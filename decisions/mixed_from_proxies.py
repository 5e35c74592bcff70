"""Re-derive the `--bits mixed` preset from a proxy sensitivity sweep, never from evaluation images.

Input: a ``squeezenet sensitivity ... --calib DATA --sparsities none --bits 8,6,...`` folder (its
``top1`` is top-1 agreement with the uncompressed model on the calibration images) and the
weights it probed. Per layer group of the preset (conv1, squeeze, expand1x1, expand3x3, conv10)
it sums the agreement lost by quantizing each layer alone to 6 bits, and divides by the bits
that 8 -> 6 saves (8 - bits per stored, nonzero weight). Groups go to 6 bits cheapest first; the
preset's two 6-bit groups are the first two in that order.

    squeezenet import-caffe-dc ../shared/data/squeezenet-dc/compressed_SqueezeNet.net \
        -o imported.safetensors
    squeezenet sensitivity imported.safetensors --data ../shared/data/imagenet-sample/manifest.csv \
        --calib cifar10 --split train --calib-images 500 --sparsities none --bits 8,6,5 -o sens
    python decisions/mixed_from_proxies.py imported.safetensors sens > mixed.json

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from squeezenet.compress.config import MIXED_BITS
from squeezenet.experiments.provenance import command_line

GROUPS = ("conv1", "fire*.squeeze", "fire*.expand1x1", "fire*.expand3x3", "conv10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="the .safetensors the sweep probed")
    parser.add_argument("sweep", help="the sensitivity folder (sensitivity.csv)")
    parser.add_argument("--bits", type=int, default=6, help="the narrower width of the preset")
    args = parser.parse_args()
    weights = load_file(args.weights)
    rows = list(csv.DictReader((Path(args.sweep) / "sensitivity.csv").open()))
    groups = []
    for pattern in GROUPS:
        lost, stored, layers = 0.0, 0, []
        for row in rows:
            if row["kind"] != "bits" or float(row["value"]) != args.bits:
                continue
            if not fnmatch.fnmatchcase(row["layer"], pattern):
                continue
            nonzero = int(np.count_nonzero(weights[row["prefix"] + ".weight"]))
            lost += 1.0 - float(row["top1"])
            stored += nonzero
            layers.append(row["layer"])
        saved = stored * (8 - args.bits)
        groups.append(
            {
                "group": pattern,
                "layers": len(layers),
                "stored_weights": stored,
                "agreement_lost_sum": round(lost, 3),
                "agreement_lost_mean": round(lost / max(len(layers), 1), 3),
                "bits_saved": saved,
                "lost_per_kbit": round(1000 * lost / max(saved, 1), 5),
            }
        )
    order = sorted(groups, key=lambda g: g["lost_per_kbit"])
    current = sorted(p for p, b in MIXED_BITS if b == args.bits)
    derived = sorted(g["group"] for g in order[: len(current)])
    print(
        json.dumps(
            {
                "command": command_line(sys.argv),
                "sweep": args.sweep,
                "groups": groups,
                "order_to_6_bits": [g["group"] for g in order],
                "current_6_bit_groups": current,
                "derived_6_bit_groups": derived,
                "preset_confirmed": current == derived,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
