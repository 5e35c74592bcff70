"""--calib and --distill for a compression, wired in compress/calibrate: what each gives the
quantizer, on a ~20k-parameter model and synthetic proxy images (fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch import nn

from squeezenet.arch.preprocess import CIFAR10
from squeezenet.compress import CompressConfig
from squeezenet.compress.calibrate import calibrate, proxy_distiller
from squeezenet.errors import ConfigError, InputError
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


def test_hessian_weighting_gives_feedback_factors_and_a_bias_correction() -> None:
    """--weighting hessian: each layer's (K, K) error feedback factor, upper triangular."""
    config = CompressConfig(quantizer="trellis", rate_lambda=1e-6, weighting="hessian")
    loaded = _loaded()
    found = calibrate(loaded, config, "synthetic")
    assert found.feedback and found.importance is None and found.correct is not None
    for name, module in loaded.model.named_modules():
        if name in found.feedback:
            weight = module.weight
            k = weight[0].numel()
            u = found.feedback[name]
            assert u.shape == (k, k) and np.allclose(u, np.triu(u)) and (np.diag(u) > 0).all()


def test_sequential_weighting_walks_the_model_with_the_feedback_standing_in() -> None:
    """--weighting sequential: the sequential quantization (biases corrected inside, so no
    bias-correction hook) and the parallel feedback factors its byte search starts from."""
    config = CompressConfig(quantizer="trellis", rate_lambda=1e-6, weighting="sequential")
    found = calibrate(_loaded(), config, "synthetic")
    assert found.sequential is not None and found.feedback and found.correct is None
    assert found.sequential.config.seed == config.seed
    # the stand-in's classifier at the walk's finer lambda, so their file sizes track
    assert found.scales == {"classifier.1": found.sequential.config.final_scale}

    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())  # no stages() to walk
    unwalkable = LoadedModel(plain, "plain", {}, CIFAR10, None, Path("p.safetensors"))
    with pytest.raises(ConfigError, match="use --weighting hessian"):  # before any proxy pass
        calibrate(unwalkable, config, "synthetic")


def test_input_hessians_are_the_mean_patch_outer_products() -> None:
    """With every position kept, a conv layer's Hessian is the mean of its im2col patches'
    outer products, per image position, averaged over images."""
    import torch
    from torch import nn

    from squeezenet.compress.weighting import HessianConfig, input_hessians

    class Batches:
        def batches(self, images: int, batch_size: int, seed: int) -> list[torch.Tensor]:
            return [torch.randn(images, 2, 6, 6, generator=torch.Generator().manual_seed(seed))]

    conv = nn.Conv2d(2, 3, 3, padding=1)
    config = HessianConfig(images=4, batch_size=4, positions=10_000)
    found = input_hessians(nn.Sequential(conv), Batches(), config)  # type: ignore[arg-type]
    (x,) = Batches().batches(4, 4, 0)
    cols = torch.nn.functional.unfold(x, 3, padding=1).double()  # (4, 18, 36)
    want = torch.einsum("nkl,njl->kj", cols, cols) / (4 * 36)
    np.testing.assert_allclose(found["0"], want.numpy(), rtol=1e-10)


def test_bias_grid_puts_each_grid_bias_on_its_own_grid_and_the_model_matches_the_file() -> None:
    """--bias grid: calibration gives each layer a bias step scale (0.25 x its RMS input); the
    compressed file is version 4, every bias is a multiple of scale x grid step, and the model
    in memory computes what the file decodes to."""
    from squeezenet.compress.calibrate import BIAS_STEP_SCALE
    from squeezenet.formats import decode_sqz, spec
    from squeezenet.workflows.compress_file import compress_model

    config = CompressConfig(quantizer="trellis", rate_lambda=1e-6, bias_dtype="grid")
    loaded = _loaded()
    found = calibrate(loaded, config, "synthetic")
    assert found.bias_scales and found.correct is not None
    names = {name for name, m in loaded.model.named_modules() if isinstance(m, nn.Conv2d)}
    assert set(found.bias_scales) == names
    assert all(v > 0 for v in found.bias_scales.values()) and BIAS_STEP_SCALE == 0.25
    result = compress_model(loaded, config, distill=found.correct, bias_scales=found.bias_scales)
    assert result.data[4] == spec.VERSION_BIAS_GRID
    back = decode_sqz(result.data)
    state = result.model.state_dict()
    for layer in back.layers:
        assert layer.grid is not None and layer.bias_grid is not None
        step = np.float32(found.bias_scales[layer.name] * layer.grid.step)
        assert layer.bias_grid.step == float(step)
        assert np.array_equal(layer.bias, layer.bias_grid.values())
        assert np.array_equal(state[f"{layer.name}.bias"].numpy(), layer.bias)
    with pytest.raises(ConfigError, match="--bias grid sets each bias step"):
        compress_model(_loaded(), config)  # no scales: needs --calib
    with pytest.raises(ConfigError, match="--bias grid puts biases on the grid"):
        CompressConfig(rate_lambda=1e-6, bias_dtype="grid")  # ECSQ has no grid
