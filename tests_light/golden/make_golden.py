"""Writes the light suite's golden files (run once, with torch): four small PNG images in an
image folder (classes a and b) and the torch path's logits of the shipped model on them.

    .venv/bin/python tests_light/golden/make_golden.py

The images are synthetic (smooth colour fields with edges and noise, seeded), sized so that
the Caffe preprocessing resizes and crops them (not square, not 227 px).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from squeezenet.data.transforms import eval_transform
from squeezenet.workflows.load import load_pretrained

HERE = Path(__file__).resolve().parent
SIZES = {"a/0.png": (240, 180), "a/1.png": (150, 230), "b/2.png": (256, 256), "b/3.png": (97, 61)}


def image(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    coarse = rng.uniform(0, 255, (3, 3))
    pixels = np.stack(
        [coarse[c, 0] * x + coarse[c, 1] * y + coarse[c, 2] * (x > 0.5) for c in range(3)], -1
    )
    pixels = pixels + rng.normal(0, 2, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def main() -> None:
    loaded = load_pretrained("squeezenet1_0-dc")
    transform = eval_transform(loaded.preprocess)
    names, batch = [], []
    for seed, (name, size) in enumerate(SIZES.items()):
        path = HERE / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image(seed, size).save(path)
        names.append(name)
        batch.append(transform(Image.open(path).convert("RGB")))
    with torch.no_grad():
        logits = loaded.model(torch.stack(batch)).numpy()
    np.savez(HERE / "squeezenet1_0-dc_logits.npz", names=np.array(names), logits=logits)


if __name__ == "__main__":
    main()
