"""The ONNX graph built from a layer list computes the torch module's logits and the numpy
engine's, for every stem, batch norms (folded) and both bypasses; it is a valid ONNX model."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
import torch

from squeezenet.arch.layers import layer_list
from squeezenet.errors import InputError, MissingDependencyError
from squeezenet.models import create_model
from squeezenet.runtime.numpy_engine import NumpyNetwork
from squeezenet.runtime.onnx_graph import OPSET, OnnxRuntimeNetwork, build_graph

# (model, overrides, input (C, H, W)): small inputs that keep every map >= 1 pixel; odd sizes
# such as 71 -> 33 -> 16 -> 8 -> 4 need the ceil-mode pools' last, overhanging window.
CASES: list[tuple[str, dict[str, Any], tuple[int, int, int]]] = [
    ("squeezenet1_0", {}, (3, 63, 71)),
    ("squeezenet1_1", {}, (3, 64, 57)),
    ("squeezenet1_0", {"final_conv_padding": 1}, (3, 47, 47)),
    ("squeezenet_small", {"in_channels": 1}, (1, 28, 28)),
    ("squeezenet_small", {}, (3, 32, 32)),
    ("squeezenet_small", {"bypass": "complex"}, (3, 30, 30)),  # shortcut convs with batch norm
    ("squeezenet1_0_simple_bypass", {}, (3, 63, 63)),
    ("squeezenet1_1_complex_bypass", {}, (3, 65, 65)),
]
TOLERANCE = 1e-4  # of the logits' range: float32 sums in another order, ~1e-6 measured


def _randomised(name: str, overrides: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    """A model in eval mode with He-scaled random weights, random biases and batch norms whose
    statistics and affine parameters are far from the identity (so a wrong fold shows)."""
    model = create_model(name, seed=seed, **overrides).eval()
    generator = torch.Generator().manual_seed(seed)

    def rand(shape: torch.Size) -> torch.Tensor:
        return torch.rand(shape, generator=generator)

    def randn(shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=generator)

    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            if tensor.ndim == 4:  # a convolution's weight
                tensor.copy_(randn(tensor.shape) * (2.0 / tensor[0].numel()) ** 0.5)
            elif key.endswith(("running_var", ".weight")):  # positive: variances, BN scales
                tensor.copy_(rand(tensor.shape) + 0.5)
            else:  # biases and running means
                tensor.copy_(randn(tensor.shape) * 0.2)
    return model


def _weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in model.state_dict().items()}


def _batch(shape: tuple[int, int, int], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, *shape)).astype(np.float32)


@pytest.mark.parametrize(("name", "overrides", "shape"), CASES)
def test_logits_match_torch_and_numpy(
    name: str, overrides: dict[str, Any], shape: tuple[int, int, int]
) -> None:
    model = _randomised(name, overrides)
    layers, weights, x = layer_list(model.config), _weights(model), _batch(shape)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = OnnxRuntimeNetwork(layers, weights, shape, threads=1)(x)
    assert got.shape == expected.shape == (2, model.config.num_classes)
    scale = float(expected.max() - expected.min())
    assert scale > 0.1  # the random weights give logits that differ (a real comparison)
    assert float(np.abs(got - expected).max()) / scale < TOLERANCE
    engine = NumpyNetwork(layers, weights)(x)
    assert float(np.abs(got - engine).max()) / scale < TOLERANCE


def test_the_graph_is_a_valid_onnx_model_with_a_dynamic_batch_and_metadata() -> None:
    import onnx

    model = _randomised("squeezenet1_1_complex_bypass", {})
    metadata = {"squeezenet.model": "squeezenet1_1_complex_bypass", "squeezenet.classes": "[]"}
    proto = build_graph(layer_list(model.config), _weights(model), (3, 64, 64), metadata=metadata)
    onnx.checker.check_model(proto, full_check=True)  # full: shape inference as well
    assert [o.version for o in proto.opset_import] == [OPSET]
    assert {p.key: p.value for p in proto.metadata_props} == metadata
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    assert (graph_input.name, graph_output.name) == ("input", "logits")
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 64, 64]
    dims = [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim]
    assert dims == ["batch", 1000]


def test_batch_rows_are_independent() -> None:
    model = _randomised("squeezenet1_1", {})
    network = OnnxRuntimeNetwork(layer_list(model.config), _weights(model), (3, 64, 64))
    x = np.concatenate([_batch((3, 64, 64)), _batch((3, 64, 64), seed=2)])  # (4, 3, 64, 64)
    np.testing.assert_allclose(network(x[2:3]), network(x)[2:3], rtol=0, atol=1e-5)


def test_inputs_of_another_shape_are_refused() -> None:
    model = _randomised("squeezenet_small", {})
    network = OnnxRuntimeNetwork(layer_list(model.config), _weights(model), (3, 32, 32))
    with pytest.raises(InputError, match=r"\(N, 3, 32, 32\)"):
        network(np.zeros((1, 3, 28, 28), np.float32))


def test_a_missing_weight_is_named() -> None:
    model = _randomised("squeezenet_small", {})
    weights = _weights(model)
    del weights["features.4.expand3x3_bn.running_var"]
    with pytest.raises(InputError, match=r"features\.4\.expand3x3_bn\.running_var"):
        build_graph(layer_list(model.config), weights, (3, 32, 32))


@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_a_missing_package_names_the_install_command(
    package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _randomised("squeezenet_small", {})
    monkeypatch.setitem(sys.modules, package, None)  # `import package` raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'squeezenet-dc\[onnx\]'"):
        OnnxRuntimeNetwork(layer_list(model.config), _weights(model), (3, 32, 32))
