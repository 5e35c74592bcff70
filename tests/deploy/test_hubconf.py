"""hubconf.py: torch.hub finds the entry points and loads the shipped model from a checkout."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import torch

from squeezenet.models import create_model
from squeezenet.workflows.load import load_pretrained

ROOT = Path(__file__).resolve().parents[2]


def _hubconf() -> ModuleType:
    """hubconf.py imported as torch.hub imports it (a module from its file path)."""
    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_entry_points_are_what_torch_hub_lists() -> None:
    """torch.hub.list's rule (torch 2.14 lists GitHub repositories only): every public callable
    is an entry point; each has the docstring torch.hub.help shows."""
    hubconf = _hubconf()
    listed = [n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_")]
    assert listed == ["squeezenet1_0", "squeezenet1_0_dc", "squeezenet1_1"]
    assert all(getattr(hubconf, name).__doc__ for name in listed)
    assert "477,964 bytes" in hubconf.squeezenet1_0_dc.__doc__
    assert hubconf.dependencies == ["torch", "numpy"]


def test_the_shipped_model_loads_decoded_and_in_eval_mode() -> None:
    model = torch.hub.load(str(ROOT), "squeezenet1_0_dc", source="local")
    expected = load_pretrained("squeezenet1_0-dc").model.state_dict()
    assert not model.training
    state = model.state_dict()
    assert list(state) == list(expected)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name


def test_the_untrained_architectures_take_create_models_arguments() -> None:
    model = torch.hub.load(str(ROOT), "squeezenet1_1", source="local", seed=0, num_classes=10)
    expected = create_model("squeezenet1_1", seed=0, num_classes=10).state_dict()
    assert list(model.state_dict()) == list(expected)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    assert torch.hub.load(str(ROOT), "squeezenet1_0", source="local", seed=0).training


def test_a_fresh_process_gets_the_repositorys_own_package() -> None:
    """Without PYTHONPATH (an installed squeezenet may be elsewhere on sys.path), hubconf puts
    the repository's src/ first, so the entry points run this checkout's code."""
    script = (
        "import torch\n"
        f"torch.hub.load({str(ROOT)!r}, 'squeezenet1_1', source='local', seed=0)\n"
        "import squeezenet\n"
        "print(squeezenet.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert Path(done.stdout.strip()) == ROOT / "src" / "squeezenet" / "__init__.py"
