"""Tests for squeezenet.workflows.train_run: the run folder's spec and its user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from squeezenet.errors import InputError, MissingFileError, UserError
from squeezenet.train.config import TrainConfig
from squeezenet.workflows.train_run import RUN_JSON, RunSpec, read_run_spec


def test_run_spec_round_trip(tmp_path: Path) -> None:
    spec = RunSpec("squeezenet_small", "synthetic", TrainConfig(epochs=1), overrides={"freq": 2})
    (tmp_path / RUN_JSON).write_text(json.dumps(spec.to_dict()))
    assert read_run_spec(tmp_path) == spec


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="is not a run folder") as caught:
        read_run_spec(tmp_path)
    assert isinstance(caught.value, UserError)


@pytest.mark.parametrize("text", ["{not json", "[]", '{"model": "x"}'])
def test_damaged_run_json_is_an_input_error(tmp_path: Path, text: str) -> None:
    (tmp_path / RUN_JSON).write_text(text)
    with pytest.raises(InputError, match="not a run spec of this version") as caught:
        read_run_spec(tmp_path)
    assert "\n" not in str(caught.value)
