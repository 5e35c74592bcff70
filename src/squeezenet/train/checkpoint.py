"""Training checkpoints: model + optimiser tensors and the JSON training state in ONE safetensors
file, written through a temp file and a rename, so a crash never leaves a torn checkpoint."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from squeezenet.atomic import atomic_write_bytes
from squeezenet.errors import InputError
from squeezenet.io.weights import atomic_save_safetensors
from squeezenet.runtime.model_file import read_metadata
from squeezenet.train.run_folder import CHECKPOINT, STATE_JSON


class CheckpointError(InputError):
    """A run folder or checkpoint that cannot be resumed; the message says why and what to do."""


def _rng_to_text(state: torch.Tensor) -> str:
    return base64.b64encode(state.numpy().tobytes()).decode("ascii")


def _rng_from_text(text: str) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())


def save_checkpoint(
    run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> Path:
    """Write ``run_dir/checkpoint.safetensors`` holding everything needed to resume exactly.

    ``state`` is JSON-able (epoch, step, position in the epoch, configs, metrics history); the
    torch RNG state is added here.
    """
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optim_meta: dict[str, Any] = {"param_groups": [], "state": {}}
    for group in optimizer.state_dict()["param_groups"]:
        optim_meta["param_groups"].append({k: v for k, v in group.items()})
    for index, param_state in optimizer.state_dict()["state"].items():
        scalars = {}
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
        optim_meta["state"][str(index)] = scalars
    full_state = {**state, "torch_rng": _rng_to_text(torch.get_rng_state())}
    metadata = {"state": json.dumps(full_state), "optimizer": json.dumps(optim_meta)}
    path = run_dir / CHECKPOINT
    atomic_save_safetensors(tensors, path, metadata)
    atomic_write_bytes(run_dir / STATE_JSON, json.dumps(full_state, indent=2).encode())
    return path


def load_checkpoint(
    run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore model, optimiser and torch RNG from ``run_dir``; return the saved state."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint in {run_dir} ({CHECKPOINT} is missing); start a new run"
        )
    metadata = read_metadata(path)
    try:
        state: dict[str, Any] = json.loads(metadata["state"])
        optim_meta = json.loads(metadata["optimizer"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint metadata ({exc})") from None
    tensors = load_file(str(path))
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: the checkpoint does not fit this model ({str(exc).splitlines()[0]})"
        ) from None
    optim_state: dict[int, dict[str, Any]] = {}
    for index, scalars in optim_meta["state"].items():
        optim_state[int(index)] = dict(scalars)
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            optim_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": optim_state, "param_groups": optim_meta["param_groups"]})
    torch.set_rng_state(_rng_from_text(state["torch_rng"]))
    return state
