"""The torchrun set-up without torchrun: a single process stays one; under torchrun's
environment a CPU process joins a gloo group (the group itself is faked here; the two-process
DDP test in test_fit.py runs the real one)."""

from __future__ import annotations

import pytest
import torch

from squeezenet.train import distributed


def test_a_single_process_stays_single(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rank, device = distributed.init_distributed()
    assert rank == 0 and device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_torchrun_environment_joins_a_gloo_group_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    joined: list[str] = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(distributed.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", joined.append)
    monkeypatch.setattr(distributed.dist, "get_rank", lambda: 1)
    assert distributed.init_distributed() == (1, "cpu")
    assert joined == ["gloo"]
