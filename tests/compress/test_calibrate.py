"""--calib and --distill for a compression, wired in compress/calibrate: what each gives the
quantizer, on a ~20k-parameter model and synthetic proxy images (fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from squeezenet.arch.preprocess import CIFAR10
from squeezenet.compress import CompressConfig
from squeezenet.compress.calibrate import calibrate, proxy_distiller
from squeezenet.errors import InputError
from squeezenet.io.weights import LoadedModel
from squeezenet.models import create_model

TINY = {"base_e": 16, "incr_e": 16}


def _loaded() -> LoadedModel:
    model = create_model("squeezenet_small", seed=0, **TINY).eval()
    return LoadedModel(model, "squeezenet_small", TINY, CIFAR10, None, Path("tiny.safetensors"))


def test_layer_weighting_gives_scales_and_only_grid_quantizers_a_bias_correction() -> None:
    ecsq = calibrate(_loaded(), CompressConfig(rate_lambda=1e-6), "synthetic")
    assert ecsq.scales and ecsq.importance is None and ecsq.correct is None
    config = CompressConfig(quantizer="trellis", rate_lambda=1e-6, weighting="layer")
    trellis = calibrate(_loaded(), config, "synthetic")
    assert trellis.scales and trellis.correct is not None


def test_the_distill_hook_reads_an_in_memory_training_split(tmp_path: Path) -> None:
    hook = proxy_distiller("synthetic", CompressConfig(quantizer="trellis", rate_lambda=1e-6))
    assert callable(hook)
    assert callable(proxy_distiller("synthetic", CompressConfig(), images=64))
    (tmp_path / "cat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "a.png")
    with pytest.raises(InputError, match="--distill needs an in-memory image set"):
        proxy_distiller(str(tmp_path), CompressConfig())
