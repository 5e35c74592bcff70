"""Proxy images for data-free fine-tuning: unlabeled pixels rendered at the model's input size.

Random crops, flips and upscaling (one ``grid_sample`` per batch), optionally mixed (mixup,
cutmix, 2x2 mosaics) so small proxy images look more like the model's real inputs; everything
runs on the device, and a seed gives the same images on every device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import torch
import torch.nn.functional as F

from squeezenet.arch.preprocess import Preprocess
from squeezenet.data.datasets import ArrayDataset
from squeezenet.data.transforms import normalize_batch
from squeezenet.errors import ConfigError, InputError

Mix = Literal["none", "mixup", "cutmix", "mosaic"]
MIXES: tuple[str, ...] = ("none", "mixup", "cutmix", "mosaic")
ProxyData = ArrayDataset | torch.Tensor  # uint8 (N, C, H, W) pixels, RGB, 0..255


def field_error(owner: str, name: str, expected: str, got: object) -> ConfigError:
    """The error of a config field: ``"ProxyConfig.mix: expected one of ..., got 'blend'"``."""
    return ConfigError(f"{owner}.{name}: expected {expected}, got {got!r}")


@dataclass(frozen=True)
class ProxyConfig:
    """How unlabeled proxy images become model inputs (all on the device, per batch)."""

    augment: bool = True  # random crops + flips: many views of few (32-px) images
    min_scale: float = 0.35  # smallest crop side as a fraction of the image side
    # Combine images so a batch looks less like single centred CIFAR objects: "mixup" blends
    # two, "cutmix" pastes a box of a second, "mosaic" tiles four at half size (more, smaller
    # objects and edges, closer to ImageNet statistics at 227 px).
    mix: Mix = "none"
    mix_prob: float = 0.5  # fraction of the images of a batch that are mixed
    # Mosaic grids: each mosaic is k x k tiles, k drawn uniformly from these per image. (2,): the
    # 2x2 mosaics; larger k render the 32-px images nearer their own size (4: 57 px, 7: 32 px at
    # 227), sharp-edged as photographs are, where upscaled images are blurred.
    tiles: tuple[int, ...] = (2,)
    # Fraction of the images replaced by "dead leaves" (:func:`dead_leaves`): occluding discs in
    # the proxy images' colours, sharp-edged at every scale like photographs, which drive the
    # network's activations further than upscaled 32-px images do.
    leaves: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_scale <= 1.0:
            raise field_error("ProxyConfig", "min_scale", "a fraction in (0, 1]", self.min_scale)
        if self.mix not in MIXES:
            raise field_error("ProxyConfig", "mix", f"one of {', '.join(MIXES)}", self.mix)
        if not 0.0 <= self.mix_prob <= 1.0:
            raise field_error("ProxyConfig", "mix_prob", "a probability in [0, 1]", self.mix_prob)
        if not 0.0 <= self.leaves <= 1.0:
            raise field_error("ProxyConfig", "leaves", "a probability in [0, 1]", self.leaves)
        if not self.tiles or any(not 1 <= k <= 16 for k in self.tiles):
            raise field_error("ProxyConfig", "tiles", "grid sizes in 1..16", self.tiles)


class ProxySampler:
    """Random batches of proxy images rendered at the model's input size, normalised.

    Crop, flip and resize are one ``grid_sample`` per batch (bilinear, as the data pipeline's
    upscaling); random numbers come from a CPU generator, so a seed gives the same images on
    every device.

    Args:
        data: the proxy images, an :class:`ArrayDataset` or uint8 ``(N, C, H, W)`` RGB pixels.
        preset: the model's preprocessing (its ``crop`` is the output size).
        config: augmentation and mixing.
        device: where the pixels are kept and the batches are made.
        channels_last: return batches in channels_last layout (~2x faster convolutions on CPU).
    """

    def __init__(
        self,
        data: ProxyData,
        preset: Preprocess,
        config: ProxyConfig,
        *,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
    ) -> None:
        pixels = data.tensors()[0] if isinstance(data, ArrayDataset) else data
        if pixels.ndim != 4 or pixels.shape[1] not in (1, 3) or len(pixels) == 0:
            raise InputError(
                f"proxy images must be a non-empty (N, C, H, W) tensor with C = 1 or 3, "
                f"got shape {tuple(pixels.shape)}"
            )
        self.images = pixels.contiguous().to(device)  # (N, C, H, W), 0..255
        self.preset = preset
        self.config = config
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``(n, preset.channels, crop, crop)`` float32 model inputs."""
        size = self.preset.crop
        x = self._views(n, size, size, generator)
        mix, g = self.config.mix, generator
        if mix != "none" and self.config.mix_prob > 0:
            chosen = self._uniform(n, g) < self.config.mix_prob  # (n,)
            if mix == "mixup":
                lam = self._uniform(n, g)[:, None, None, None]
                mixed = lam * x + (1 - lam) * self._views(n, size, size, g)
            elif mix == "cutmix":
                mixed = torch.where(self._box(n, size, g), self._views(n, size, size, g), x)
            elif self.config.tiles == (2,):  # mosaic: four images in a 2x2 grid
                h = size // 2
                top = torch.cat([self._views(n, h, h, g), self._views(n, h, size - h, g)], 3)
                bottom = [self._views(n, size - h, h, g), self._views(n, size - h, size - h, g)]
                mixed = torch.cat([top, torch.cat(bottom, 3)], 2)
            else:  # mosaics of k x k images, k drawn from tiles per image
                tiles = self.config.tiles
                which = torch.randint(len(tiles), (n,), generator=g).to(x.device)
                mixed = x
                for i, k in enumerate(tiles):
                    mixed = torch.where(
                        (which == i)[:, None, None, None], self._grid(n, k, g), mixed
                    )
            x = torch.where(chosen[:, None, None, None], mixed, x)
        if self.config.leaves > 0:
            chosen = self._uniform(n, g) < self.config.leaves
            if bool(chosen.any()):
                x = x.clone()
                x[chosen] = dead_leaves(self.images, int(chosen.sum()), size, g).to(x)
        if x.shape[1] != self.preset.channels:
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.mean(1, keepdim=True)
        return normalize_batch(x, self.preset).contiguous(memory_format=self.memory_format)

    def batches(self, total: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        """The same ``total`` images for the same seed, in batches of at most ``batch_size``."""
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, total, batch_size):
            yield self.batch(min(batch_size, total - start), generator)

    def _uniform(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(n, generator=generator).to(self.images.device)

    def _views(self, n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
        """Random images as ``(n, C, h, w)`` float 0..255: a random crop + flip, resized."""
        index = torch.randint(len(self.images), (n,), generator=g).to(self.images.device)
        theta = torch.zeros(n, 2, 3)
        if self.config.augment:
            side = self.config.min_scale + (1 - self.config.min_scale) * torch.rand(n, generator=g)
            aspect = torch.exp((torch.rand(n, generator=g) - 0.5) * math.log(4 / 3))
            sx, sy = (side * aspect.sqrt()).clamp(max=1), (side / aspect.sqrt()).clamp(max=1)
            flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
            theta[:, 0, 0], theta[:, 1, 1] = sx * flip, sy  # output -> input coordinates
            theta[:, 0, 2] = (2 * torch.rand(n, generator=g) - 1) * (1 - sx)
            theta[:, 1, 2] = (2 * torch.rand(n, generator=g) - 1) * (1 - sy)
        else:
            theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        source = self.images[index].float()  # (n, C, H, W)
        grid = F.affine_grid(theta.to(source.device), [n, source.shape[1], h, w], False)
        return F.grid_sample(source, grid, "bilinear", "border", align_corners=False)

    def _grid(self, n: int, k: int, g: torch.Generator) -> torch.Tensor:
        """``n`` mosaics of ``k x k`` random views as ``(n, C, crop, crop)`` float 0..255."""
        size = self.preset.crop
        cuts = [round(i * size / k) for i in range(k + 1)]
        rows = []
        for top, bottom in pairwise(cuts):
            row = [self._views(n, bottom - top, right - left, g) for left, right in pairwise(cuts)]
            rows.append(torch.cat(row, 3))
        return torch.cat(rows, 2)

    def _box(self, n: int, size: int, g: torch.Generator) -> torch.Tensor:
        """CutMix boxes as a bool ``(n, 1, size, size)`` mask covering ~U(0, 1) of the area."""
        cut = torch.rand(n, generator=g).sqrt() * size  # box side
        cy, cx = torch.rand(n, generator=g) * size, torch.rand(n, generator=g) * size
        pos = torch.arange(size, dtype=torch.float32) + 0.5
        rows = ((pos - cy[:, None]).abs() < cut[:, None] / 2)[:, :, None]  # (n, size, 1)
        cols = ((pos - cx[:, None]).abs() < cut[:, None] / 2)[:, None, :]  # (n, 1, size)
        return (rows & cols)[:, None].to(self.images.device)


# Dead leaves: disc radii follow a density ~ r**-3 between these bounds (pixels at the model's
# input size), the scale-invariant law of natural images' occlusions (Lee, Mumford & Huang 2001).
LEAF_RADII = (3.0, 120.0)
LEAF_DISCS = 500  # discs painted per image (later ones occlude earlier ones)


def dead_leaves(pixels: torch.Tensor, n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """``n`` dead-leaves images ``(n, C, size, size)`` float 0..255: a background and
    :data:`LEAF_DISCS` opaque discs (radii :data:`LEAF_RADII`, density ~ r**-3), each in the
    colour of a random pixel of a random image of ``pixels`` (uint8 ``(N, C, H, W)``).

    Natural-image statistics without natural images (Baradad et al., NeurIPS 2021, "Learning to
    See by Looking at Noise"); the colours come from the proxy set, so no other data is read.
    """
    count = n * (LEAF_DISCS + 1)
    which = torch.randint(len(pixels), (count,), generator=g)
    ys = torch.randint(pixels.shape[2], (count,), generator=g)
    xs = torch.randint(pixels.shape[3], (count,), generator=g)
    colours = pixels.cpu()[which, :, ys, xs].float().reshape(n, LEAF_DISCS + 1, -1)
    low, high = LEAF_RADII
    u = torch.rand(n, LEAF_DISCS, generator=g).double()
    radii = (low**-2 - u * (low**-2 - high**-2)) ** -0.5
    centres = torch.rand(n, LEAF_DISCS, 2, generator=g).double() * size
    out = colours[:, 0, :, None, None].expand(-1, -1, size, size).clone()
    grid = torch.arange(size, dtype=torch.float64) + 0.5
    for i in range(n):
        image = out[i]
        for k in range(LEAF_DISCS):
            r, (cy, cx) = float(radii[i, k]), centres[i, k].tolist()
            y0, y1 = max(0, int(cy - r)), min(size, int(cy + r) + 1)
            x0, x1 = max(0, int(cx - r)), min(size, int(cx + r) + 1)
            if y0 >= y1 or x0 >= x1:
                continue
            inside = (grid[y0:y1, None] - cy) ** 2 + (grid[None, x0:x1] - cx) ** 2 < r * r
            image[:, y0:y1, x0:x1][:, inside] = colours[i, k + 1][:, None]
    return out
