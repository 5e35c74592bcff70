"""An inference engine defined in a test file alone is selectable by name, as the built-in ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from squeezenet.deploy import engines
from squeezenet.deploy.engines import EngineInputs, check_engines, make_engine, register_engine
from squeezenet.errors import ConfigError
from squeezenet.models import create_model


def _doubled(given: EngineInputs) -> engines.Engine:
    model = given.model.eval()

    @torch.no_grad()
    def run(x: torch.Tensor) -> np.ndarray:
        out: np.ndarray = (2 * model(x)).numpy()
        return out

    return run


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine is registered for this file's tests only (the help-text test lists the
    package's own engines)."""
    monkeypatch.setattr(engines, "_FACTORIES", dict(engines._FACTORIES))
    monkeypatch.setattr(engines, "ENGINES", engines.ENGINES)
    register_engine("test-doubled", _doubled)


def test_a_registered_engine_runs_by_name() -> None:
    model = create_model("squeezenet_small", seed=0).eval()
    x = torch.rand(2, 3, 32, 32)
    run = make_engine("test-doubled", model, (3, 32, 32))
    with torch.no_grad():
        np.testing.assert_allclose(run(x), 2 * model(x).numpy(), rtol=1e-6)
    assert check_engines(["test-doubled", "torch"]) == ("test-doubled", "torch")
    with pytest.raises(ValueError, match="already registered"):
        register_engine("onnxruntime", _doubled)
    with pytest.raises(ConfigError, match="expected some of torch, eager_nchw"):
        check_engines(["nope"])
