"""The held-out proxy image sets that int8 and trellis variants are scored on, and their model.

Not a script: ``bench_int8_portable.py`` here and the records in ``decisions/`` import it, so
that every choice made "on held-out proxies" is made on the same images. Three sets, none of
which any variant is fitted on (calibration uses the CIFAR-10 *training* split):

* ``c10plain``: 1,000 CIFAR-10 *test* images, upscaled whole;
* ``c10mosaic``: 1,000 2x2 mosaics of CIFAR-10 test images;
* ``photos``: 1,000 random crops (15-100 % of the side) of the natural photographs that
  scikit-image and matplotlib ship (a second image family; skipped without scikit-image).

The ImageNet evaluation images are never read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from squeezenet.compress.proxy_sampler import ProxyConfig, ProxySampler
from squeezenet.data.sources import load_dataset
from squeezenet.workflows.compress_file import import_caffe_dc

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg",
    "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "brick.png", "camera.png", "grass.png",
    "gravel.png", "moon.png", "coins.png", "clock_motion.png", "color.png",
)  # fmt: skip


def imported_weights(out: Path) -> Path:
    """The published Deep Compression SqueezeNet imported to ``out/imported.safetensors``."""
    source = SHARED / "squeezenet-dc" / "compressed_SqueezeNet.net"
    if not source.is_file():
        sys.exit(f"proxy_sets: {source} not found")
    path = out / "imported.safetensors"
    import_caffe_dc(source, path)
    return path


def held_out(preprocess: Any) -> dict[str, list[torch.Tensor]]:
    """The three held-out sets as 100-image float batches, preprocessed by ``preprocess``."""
    test = load_dataset("cifar10", "test")
    sets = {}
    for name, config in (
        ("c10plain", ProxyConfig(augment=False)),
        ("c10mosaic", ProxyConfig(mix="mosaic", mix_prob=1.0)),
    ):
        sampler = ProxySampler(test, preprocess, config, channels_last=True)
        sets[name] = list(sampler.batches(1000, 100, seed=12345))
    photos = photo_pixels()
    if photos is not None:
        sampler = ProxySampler(photos, preprocess, ProxyConfig(min_scale=0.15), channels_last=True)
        sets["photos"] = list(sampler.batches(1000, 100, seed=999))
    return sets


def photo_pixels(side: int = 384) -> torch.Tensor | None:
    """The sample photographs as uint8 (N, 3, side, side): centre squares, bicubic."""
    try:
        import skimage
    except ImportError:
        print("proxy_sets: scikit-image missing; the photos set is skipped", file=sys.stderr)
        return None
    import matplotlib
    from PIL import Image

    folder = Path(os.path.dirname(skimage.__file__)) / "data"
    files = [folder / name for name in PHOTOS]
    files.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    out = []
    for path in files:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        w, h = rgb.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        square = rgb.crop(box).resize((side, side), Image.Resampling.BICUBIC)
        out.append(torch.from_numpy(np.array(square)).permute(2, 0, 1))
    return torch.stack(out)


@torch.no_grad()
def logits(model: nn.Module, batches: list[torch.Tensor]) -> torch.Tensor:
    """``model``'s logits (N, classes) on ``batches``, in eval mode."""
    model.eval()
    return torch.cat([model(x) for x in batches])


def score(
    model: nn.Module, sets: dict[str, list[torch.Tensor]], reference: dict[str, torch.Tensor]
) -> dict[str, dict[str, float]]:
    """Per held-out set: top-1 agreement with, and mean KL(reference || model) to, the
    uncompressed model's logits ``reference``."""
    import torch.nn.functional as F

    scores = {}
    for name, batches in sets.items():
        found, ref = logits(model, batches), reference[name]
        agree = float((found.argmax(1) == ref.argmax(1)).float().mean())
        kl = F.kl_div(
            F.log_softmax(found, 1), F.log_softmax(ref, 1), reduction="batchmean", log_target=True
        )
        scores[name] = {"agreement": round(agree, 4), "kl": round(float(kl), 5)}
    return scores
