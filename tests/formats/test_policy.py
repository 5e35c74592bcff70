"""Tests for squeezenet.formats.policy (the policy file, docs/POLICY.md) and for how ``--bits``
and a policy file's widths combine (squeezenet.compress.spellings.resolve_bits)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from squeezenet.compress.config import MIXED_BITS
from squeezenet.compress.spellings import DEFAULT_BITS, parse_policy, policy_bits, resolve_bits
from squeezenet.errors import ConfigError, FileFormatError, MissingFileError, UserError
from squeezenet.formats.policy import (
    POLICY_FORMAT,
    POLICY_VERSION,
    PolicyFile,
    PolicyFileError,
    PrunePolicy,
    policy_document,
    read_policy,
    write_policy,
)

# The exact bytes write_policy produces for a one-layer plan (docs/POLICY.md, "Example").
GOLDEN = """{
  "format": "squeezenet-policy",
  "version": 1,
  "prune": {
    "layers": {
      "conv1": 0.5
    }
  },
  "bits": {
    "conv1": 8
  },
  "plan": {
    "max_drop_points": 1.0
  }
}
"""


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def _policy(**changes: Any) -> dict[str, Any]:
    document = policy_document({"conv1": 0.5}, {"conv1": 8})
    document.update(changes)
    return document


def _error(path: Path) -> PolicyFileError:
    with pytest.raises(PolicyFileError) as caught:
        read_policy(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message  # one line naming the file
    assert isinstance(caught.value, FileFormatError) and isinstance(caught.value, UserError)
    return caught.value


def test_constants_are_the_documented_ones() -> None:
    assert (POLICY_FORMAT, POLICY_VERSION, DEFAULT_BITS) == ("squeezenet-policy", 1, 8)


def test_golden_bytes(tmp_path: Path) -> None:
    document = policy_document({"conv1": 0.5}, {"conv1": 8}, plan={"max_drop_points": 1.0})
    path = write_policy(tmp_path / "policy.json", document)
    assert path.read_text() == GOLDEN


def test_the_documented_example_is_the_golden_file() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "POLICY.md").read_text()
    example = text.split("## 7. Example", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    assert example == GOLDEN


def test_round_trip(tmp_path: Path) -> None:
    sparsity = {"conv1": 0.0, "fire2.squeeze": 0.123456, "fire2.expand3x3": 0.67}
    bits = {"conv1": 8, "fire2.squeeze": 6, "fire*.expand3x3": 5}
    plan = {"max_drop_points": 2.0, "layers": [{"layer": "conv1"}]}
    path = write_policy(tmp_path / "p.json", policy_document(sparsity, bits, plan=plan))
    got = read_policy(path)
    assert got == PolicyFile(
        prune={"layers": {"conv1": 0.0, "fire2.squeeze": 0.1235, "fire2.expand3x3": 0.67}},
        bits=(("conv1", 8), ("fire2.squeeze", 6), ("fire*.expand3x3", 5)),  # file order
        extra={"plan": plan},
    )
    assert parse_policy(str(path)) == PrunePolicy(
        (("conv1", 0.0), ("fire2.squeeze", 0.1235), ("fire2.expand3x3", 0.67))
    )
    assert policy_bits(str(path)) == got.bits


def test_writer_checks_its_values() -> None:
    with pytest.raises(ConfigError, match=r"1\.\.16"):
        policy_document({"conv1": 0.5}, {"conv1": 17})
    with pytest.raises(ConfigError, match="sparsity"):
        policy_document({"conv1": 1.5}, {"conv1": 8})
    with pytest.raises(ValueError, match="policy fields"):
        policy_document({}, {}, version=2)


@pytest.mark.parametrize("version", [2, 0, "1", 1.5, True, None])
def test_unknown_version_is_one_line_naming_it(tmp_path: Path, version: object) -> None:
    error = _error(_write(tmp_path / "p.json", _policy(version=version)))
    assert f"policy version {version!r} is not supported" in str(error)
    assert str(error).endswith("upgrade squeezenet") and error.field == "version"


def test_missing_version(tmp_path: Path) -> None:
    document = _policy()
    del document["version"]
    error = _error(_write(tmp_path / "p.json", document))
    assert "'version' field is missing" in str(error) and error.field == "version"


def test_unknown_format(tmp_path: Path) -> None:
    error = _error(_write(tmp_path / "p.json", _policy(format="squeezenet-plan")))
    assert "format 'squeezenet-plan' is not 'squeezenet-policy'" in str(error)
    assert error.field == "format"


@pytest.mark.parametrize("bits", [{"conv1": 17}, {"conv1": 0}, {"conv1": "8"}, {"*": True}])
def test_bits_out_of_range(tmp_path: Path, bits: dict[str, object]) -> None:
    error = _error(_write(tmp_path / "p.json", _policy(bits=bits)))
    assert "expected an integer width in 1..16" in str(error) and error.field == "bits"


@pytest.mark.parametrize("bits", [{}, [8], 8])
def test_bits_must_be_a_non_empty_object(tmp_path: Path, bits: object) -> None:
    error = _error(_write(tmp_path / "p.json", _policy(bits=bits)))
    assert "'bits' must map layer patterns to widths" in str(error)


def test_bits_and_prune_are_optional(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", {"format": POLICY_FORMAT, "version": 1, "plan": {}})
    assert read_policy(path) == PolicyFile(prune=None, bits=None, extra={"plan": {}})
    assert parse_policy(str(path)) is None  # no prune: keep the model's zeros
    path = _write(tmp_path / "p.json", _policy(prune=None, bits=None))
    assert read_policy(path) == PolicyFile(prune=None, bits=None)


def test_damaged_prune_names_the_field(tmp_path: Path) -> None:
    error = _error(_write(tmp_path / "p.json", _policy(prune={"layers": {"conv1": 1.5}})))
    assert "sparsity of 'conv1' must be in [0, 1]" in str(error) and error.field == "prune"
    error = _error(_write(tmp_path / "p.json", _policy(prune=[0.5])))
    assert "'prune' must be a JSON object" in str(error)


def test_plain_prune_policy_object(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.json", {"*.expand3x3": 0.6, "conv10": 0.8})
    assert read_policy(path) == PolicyFile(prune={"*.expand3x3": 0.6, "conv10": 0.8}, bits=None)
    assert parse_policy(str(path)) == PrunePolicy((("*.expand3x3", 0.6), ("conv10", 0.8)))
    assert policy_bits(str(path)) is None
    std = _write(tmp_path / "std.json", {"method": "std", "layers": {"conv10": 1.5}})
    assert parse_policy(str(std)) == PrunePolicy((("conv10", 1.5),), method="std")
    error = _error(_write(tmp_path / "bad.json", {"conv1": 1.5}))
    assert "the prune policy" in str(error) and error.field == "prune"


@pytest.mark.parametrize(
    ("text", "needle"),
    [("{not json", "not a JSON document"), ("[1, 2]", "expected a JSON object, got list")],
)
def test_not_a_json_object(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    assert needle in str(_error(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="policy file not found"):
        read_policy(tmp_path / "missing.json")


def test_resolve_bits_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planned = write_policy(tmp_path / "plan.json", policy_document({}, {"conv1": 5, "*": 7}))
    plain = _write(tmp_path / "plain.json", {"*": 0.5})
    # An explicit --bits wins over the policy file's widths.
    assert resolve_bits("6", str(planned)) == 6
    assert resolve_bits("mixed", str(planned)) == MIXED_BITS
    assert resolve_bits("conv1=3", str(planned)) == (("conv1", 3),)
    # Without --bits: the policy file's widths, else 8.
    assert resolve_bits(None, str(planned)) == (("conv1", 5), ("*", 7))
    for policy in (str(plain), "none", "paper", "0.5", "std:1.0", '{"*": 0.5}'):
        assert resolve_bits(None, policy) == DEFAULT_BITS == 8
    # With --bits the policy file's widths are not read, so damaged ones do not matter.
    damaged = _write(tmp_path / "damaged.json", _policy(bits={"conv1": 99}))
    assert resolve_bits("6", str(damaged)) == 6
    with pytest.raises(PolicyFileError, match=r"1\.\.16"):
        resolve_bits(None, str(damaged))
    # A keyword is a keyword even when a file of that name exists.
    monkeypatch.chdir(tmp_path)
    write_policy(tmp_path / "paper", policy_document({}, {"*": 3}))
    assert resolve_bits(None, "paper") == DEFAULT_BITS
    assert parse_policy("paper") == PrunePolicy.paper()
