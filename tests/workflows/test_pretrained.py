"""The shipped model: the published Deep Compression SqueezeNet re-coded to <= 481,000 bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import squeezenet
from squeezenet.errors import MissingFileError
from squeezenet.workflows.load import PRETRAINED, is_model_file, load_any, pretrained_path

SRC = Path(squeezenet.__file__).resolve().parent


def test_one_sqz_under_src_and_it_is_small_enough() -> None:
    files = sorted(SRC.rglob("*.sqz"))
    assert [f.name for f in files] == ["squeezenet1_0-dc.sqz"]
    assert files[0].stat().st_size <= 481_000


def test_provenance_and_licence_beside_it() -> None:
    path = pretrained_path("squeezenet1_0-dc")
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["bytes"] == path.stat().st_size
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "--target-bytes 481000" in record["commands"][1]
    assert record["measured"]["agreement"] >= 0.95
    assert abs(record["measured"]["top1_diff"]) <= 0.01
    licence = (path.parent / "LICENCE-squeezenet-dc.txt").read_text()
    assert licence.startswith("BSD LICENSE.")


def test_loadable_by_name() -> None:
    loaded = squeezenet.load_pretrained("squeezenet1_0-dc")
    assert loaded.model_name == "squeezenet1_0"
    assert loaded.class_names is not None and len(loaded.class_names) == 1000
    assert is_model_file("squeezenet1_0-dc") and not is_model_file("squeezenet1_0")
    again = load_any("squeezenet1_0-dc")
    x = torch.rand(1, 3, 227, 227)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), again.model(x))
    assert set(PRETRAINED) == {"squeezenet1_0-dc"}
    with pytest.raises(MissingFileError, match="known: squeezenet1_0-dc"):
        pretrained_path("squeezenet9")
