"""Policies as plain data: how much of each layer to prune (:class:`PrunePolicy`, from a CLI
spelling or a JSON object), and the policy file (docs/POLICY.md): per-layer pruning and bit
widths as one JSON document.

``squeezenet sensitivity --plan`` writes the file; ``squeezenet compress --policy FILE`` reads it.
This module is the only reader and writer. A plain prune-policy JSON object (no ``"format"`` key,
as :func:`parse_prune_policy` reads) is accepted too: it has no bits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal, cast

from squeezenet.atomic import atomic_write_json
from squeezenet.errors import ConfigError, FileFormatError, MissingFileError
from squeezenet.formats.model import check_bits

Method = Literal["sparsity", "std"]
METHODS: tuple[str, ...] = ("sparsity", "std")

# The released Deep Compression SqueezeNet (data/squeezenet-dc): measured sparsity per layer is
# 0.670 (expand 3x3 of fire2-7), 0.700 (fire8/9), 0.800 (conv10), 0.500 (four late 1x1 layers);
# every other layer is dense. First match wins, so the fire8/9 rules precede the generic one.
PAPER_RULES: tuple[tuple[str, float], ...] = (
    ("fire8.expand3x3", 0.70),
    ("fire9.expand3x3", 0.70),
    ("fire*.expand3x3", 0.67),
    ("conv10", 0.80),
    ("fire6.expand1x1", 0.50),
    ("fire7.squeeze", 0.50),
    ("fire8.expand1x1", 0.50),
    ("fire9.squeeze", 0.50),
)


@dataclass(frozen=True)
class PrunePolicy:
    """How much of each layer to prune: the first rule whose pattern matches the layer wins.

    Build one with :meth:`uniform`, :meth:`per_layer`, :meth:`std_threshold`, :meth:`paper` or
    :func:`parse_prune_policy`. Layers that no rule matches stay dense.
    """

    # (fnmatch pattern, amount) pairs; a pattern matches the state-dict name or the Table 1 name.
    rules: tuple[tuple[str, float], ...]
    # "sparsity": amount is the fraction of weights to zero (smallest |w| first);
    # "std": amount is Han et al.'s quality q, weights with |w| < q * std(w) are zeroed.
    method: Method = "sparsity"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"PrunePolicy.method: expected one of {', '.join(METHODS)}, got {self.method!r}"
            )
        if not isinstance(self.rules, tuple):
            raise ConfigError(f"PrunePolicy.rules: expected a tuple of pairs, got {self.rules!r}")
        for rule in self.rules:
            if (
                not isinstance(rule, tuple)
                or len(rule) != 2
                or not isinstance(rule[0], str)
                or isinstance(rule[1], bool)
                or not isinstance(rule[1], (int, float))
            ):
                raise ConfigError(
                    f"PrunePolicy.rules: expected (pattern, number) pairs, got {rule!r}"
                )
            amount = float(rule[1])
            if self.method == "sparsity" and not 0.0 <= amount <= 1.0:
                raise ConfigError(
                    f"PrunePolicy.rules: sparsity of {rule[0]!r} must be in [0, 1], got {amount}"
                )
            if self.method == "std" and not amount >= 0.0:
                raise ConfigError(
                    f"PrunePolicy.rules: quality of {rule[0]!r} must be >= 0, got {amount}"
                )

    @classmethod
    def uniform(cls, sparsity: float) -> PrunePolicy:
        """The same sparsity for every weight layer."""
        return cls((("*", float(sparsity)),))

    @classmethod
    def per_layer(cls, sparsities: Mapping[str, float]) -> PrunePolicy:
        """Sparsity by pattern, e.g. ``{"*.expand3x3": 0.67, "classifier.1": 0.8}``."""
        return cls(tuple((str(p), float(s)) for p, s in sparsities.items()))

    @classmethod
    def std_threshold(cls, quality: float, pattern: str = "*") -> PrunePolicy:
        """Han et al. (2015): zero the weights with ``|w| < quality * std(w)`` of their layer."""
        return cls(((pattern, float(quality)),), method="std")

    @classmethod
    def paper(cls) -> PrunePolicy:
        """The per-layer sparsity of the released Deep Compression SqueezeNet (v1.0 layout)."""
        return cls(PAPER_RULES)

    def amount_for(self, names: tuple[str, ...]) -> float | None:
        """The amount of the first rule matching any of ``names``, or None (stay dense)."""
        for pattern, amount in self.rules:
            if any(fnmatchcase(name, pattern) for name in names):
                return float(amount)
        return None


def parse_prune_policy(spec: str | float | Mapping[str, Any]) -> PrunePolicy:
    """A policy from a CLI string or a JSON-like dict.

    Accepted: a number (``0.5`` or ``"0.5"``: uniform sparsity); ``"paper"``; ``"std:Q"``
    (Han threshold with quality Q for every layer); a JSON object or dict mapping patterns to
    sparsities (``{"*.expand3x3": 0.67}``); or ``{"method": "std", "layers": {pattern: q}}``.

    Raises:
        ConfigError: ``spec`` is none of these, or an amount is out of range.
    """
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return PrunePolicy.uniform(float(spec))
    if isinstance(spec, str):
        return _parse_text(spec)
    if isinstance(spec, Mapping):
        return _parse_mapping(spec)
    raise ConfigError(f"prune policy: expected a number, 'paper', 'std:Q' or a dict, got {spec!r}")


def _parse_text(spec: str) -> PrunePolicy:
    text = spec.strip()
    if text == "paper":
        return PrunePolicy.paper()
    if text.startswith("std:"):
        return PrunePolicy.std_threshold(_number(text[4:], spec))
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"prune policy: invalid JSON {spec!r}: {exc}") from None
        return _parse_mapping(cast(Mapping[str, Any], data))  # "{..." parses to an object
    return PrunePolicy.uniform(_number(text, spec))


def _parse_mapping(spec: Mapping[str, Any]) -> PrunePolicy:
    if "layers" not in spec:
        return PrunePolicy(tuple((str(p), _number(v, spec)) for p, v in spec.items()))
    unknown = sorted(set(spec) - {"layers", "method"})
    if unknown:
        raise ConfigError(f"prune policy: unknown keys {unknown}; expected layers, method")
    layers = spec["layers"]
    if not isinstance(layers, Mapping):
        raise ConfigError(f"prune policy: 'layers' must map patterns to numbers: {layers!r}")
    rules = tuple((str(p), _number(v, spec)) for p, v in layers.items())
    return PrunePolicy(rules, method=spec.get("method", "sparsity"))


def _number(value: object, spec: object) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"prune policy {spec!r}: expected a number, got {value!r}")
    try:
        return float(cast(Any, value))
    except (TypeError, ValueError):
        raise ConfigError(
            f"prune policy {spec!r}: expected a number, 'paper', 'std:Q' or JSON, got {value!r}"
        ) from None


POLICY_FORMAT = "squeezenet-policy"  # the "format" field
POLICY_VERSION = 1  # the "version" field this package writes and reads
_FIELDS = ("format", "version", "prune", "bits")  # every other top-level key is extra


class PolicyFileError(FileFormatError):
    """A policy file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class PolicyFile:
    """A policy file's contents."""

    # A prune-policy document for parse_prune_policy ({"layers": {name: sparsity}} or
    # {pattern: sparsity}); None: keep the model's zeros as they are.
    prune: Mapping[str, Any] | None
    # (pattern, bits) rules in file order, first match wins; None: the file sets no widths.
    bits: tuple[tuple[str, int], ...] | None
    # Everything else the writer recorded (e.g. "plan": how the plan was made).
    extra: Mapping[str, Any] = field(default_factory=dict)


def policy_document(
    prune_layers: Mapping[str, float], bits: Mapping[str, int], **extra: Any
) -> dict[str, Any]:
    """The JSON document of a policy file: per-layer target sparsity and bit width.

    Args:
        prune_layers: layer name or pattern -> target sparsity in [0, 1] (rounded to 4 digits).
        bits: layer name or pattern -> codebook index width in 1..16.
        extra: further top-level fields (e.g. ``plan``); readers keep them in ``PolicyFile.extra``.

    Raises:
        ConfigError: a sparsity or width out of range.
    """
    reserved = sorted(set(extra) & set(_FIELDS))
    if reserved:
        raise ValueError(f"policy_document: {reserved} are policy fields, not extra ones")
    prune = {"layers": {name: round(float(s), 4) for name, s in prune_layers.items()}}
    parse_prune_policy(prune)  # the sparsities are in range
    for name, width in bits.items():
        check_bits(width, f"policy bits for {name!r}")
    return {
        "format": POLICY_FORMAT,
        "version": POLICY_VERSION,
        "prune": prune,
        "bits": dict(bits),
        **extra,
    }


def write_policy(path: str | Path, document: Mapping[str, Any]) -> Path:
    """Write a :func:`policy_document` atomically; returns the path."""
    path = Path(path)
    atomic_write_json(path, dict(document))
    return path


def read_policy(path: str | Path) -> PolicyFile:
    """Read a policy file, or a plain prune-policy JSON object (docs/POLICY.md).

    Raises:
        MissingFileError: no such file.
        PolicyFileError: not JSON, not an object, an unknown format or version, a prune policy
            that does not parse, or bad bits; the message is one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"policy file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"policy {path}: not a JSON document ({exc})") from None
    if not isinstance(data, dict):
        raise PolicyFileError(f"policy {path}: expected a JSON object, got {type(data).__name__}")
    if "format" not in data:  # a plain prune policy: every key belongs to it
        return PolicyFile(prune=_prune(path, data, "the prune policy"), bits=None)
    _check_header(path, data)
    prune = data.get("prune")
    if prune is not None and not isinstance(prune, dict):
        raise PolicyFileError(f"policy {path}: 'prune' must be a JSON object", field="prune")
    extra = {k: v for k, v in data.items() if k not in _FIELDS}
    return PolicyFile(
        prune=_prune(path, prune, "prune") if prune else None,  # absent, null, {}: none
        bits=_bits(path, data.get("bits")),
        extra=extra,
    )


def _check_header(path: Path, data: Mapping[str, Any]) -> None:
    if data["format"] != POLICY_FORMAT:
        raise PolicyFileError(
            f"policy {path}: format {data['format']!r} is not {POLICY_FORMAT!r}; "
            "write it with `squeezenet sensitivity --plan`",
            field="format",
        )
    if "version" not in data:
        raise PolicyFileError(
            f"policy {path}: the 'version' field is missing (this package reads {POLICY_VERSION})",
            field="version",
        )
    version = data["version"]
    if type(version) is not int or version != POLICY_VERSION:  # not true, 1.0 or "1"
        raise PolicyFileError(
            f"policy {path}: policy version {version!r} is not supported (this package reads "
            f"{POLICY_VERSION}); upgrade squeezenet",
            field="version",
        )


def _prune(path: Path, prune: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    """``prune`` if :func:`parse_prune_policy` accepts it."""
    try:
        parse_prune_policy(prune)
    except ValueError as exc:
        raise PolicyFileError(f"policy {path}: {what}: {exc}", field="prune") from None
    return prune


def _bits(path: Path, bits: object) -> tuple[tuple[str, int], ...] | None:
    if bits is None:
        return None
    if not isinstance(bits, dict) or not bits:
        raise PolicyFileError(
            f"policy {path}: 'bits' must map layer patterns to widths", field="bits"
        )
    try:
        return tuple((str(p), check_bits(b, f"policy {path} bits {p!r}")) for p, b in bits.items())
    except ValueError as exc:
        raise PolicyFileError(str(exc), field="bits") from None
