"""The .sqz header record (docs/FORMAT.md section 3): its JSON, written and checked.

The decoder checks every rule of section 3 itself, so that what a file may hold does not
depend on project code; :func:`complete_preprocess` only fills in the defaults afterwards.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

from squeezenet.formats import spec
from squeezenet.formats.bitio import Reader, varint
from squeezenet.formats.model import CompressedModel

KEYS = ("model", "config", "preprocess", "classes")
# The members of "preprocess": required ones first, then the defaulted ones (FORMAT.md sec. 3).
_PREPROCESS_REQUIRED = ("name", "resize", "crop", "mean", "std")
_PREPROCESS_OPTIONAL = ("channel_order", "value_scale", "channels", "interpolation")
# The value an absent optional member means (``squeezenet.arch.preprocess.Preprocess`` agrees).
PREPROCESS_DEFAULTS: dict[str, Any] = {
    "channel_order": "RGB",
    "value_scale": 1.0,
    "channels": 3,
    "interpolation": "bilinear",
}


def complete_preprocess(value: dict[str, Any]) -> dict[str, Any]:
    """A valid ``"preprocess"`` object with every member present, in section 3's order, and
    ``mean``/``std`` as tuples of floats.

    Raises:
        ValueError: ``value`` breaks section 3 (the message says which members).
    """
    plain = _plain(value)
    problem = preprocess_problem(plain)
    if problem is not None:
        raise ValueError(f"preprocess: {problem}")
    out = {key: plain.get(key, PREPROCESS_DEFAULTS.get(key)) for key in _PREPROCESS_REQUIRED}
    out.update({key: plain.get(key, PREPROCESS_DEFAULTS[key]) for key in _PREPROCESS_OPTIONAL})
    for key in ("mean", "std"):  # lists of numbers: preprocess_problem checked them
        out[key] = tuple(float(v) for v in plain[key])
    return out


def encode_header(model: CompressedModel) -> bytes:
    """The header record of ``model``: encoding, length, then the (zlib-compressed) JSON.

    Raises:
        ValueError: the model name, config, preprocessing or class names break section 3.
    """
    if not isinstance(model.model_name, str) or not model.model_name:
        raise ValueError("encode_sqz: model_name must be a non-empty string")
    preprocess = model.preprocess
    if preprocess is not None:
        plain = _plain(preprocess)  # the decoder's check below names what is wrong, if anything
        preprocess = plain if preprocess_problem(plain) is not None else complete_preprocess(plain)
    classes: str | list[str] | None = None
    if model.class_names is not None:
        names = [str(n) for n in model.class_names]
        classes = spec.standard_class_list_name(names) or names
    header = {
        "model": model.model_name,
        "config": model.config,
        "preprocess": preprocess,
        "classes": classes,
    }
    try:
        text = json.dumps(
            header, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"encode_sqz: config must be JSON-serialisable: {exc}") from None
    if len(text) > spec.MAX_HEADER_JSON_BYTES:
        raise ValueError(
            f"encode_sqz: header JSON is {len(text)} bytes, the limit is "
            f"{spec.MAX_HEADER_JSON_BYTES >> 20} MiB"
        )
    try:  # what the decoder will check: never write a header it rejects
        problem = content_problem(parse_json(text))
    except ValueError as exc:
        problem = ("header", f": {exc}")
    if problem is not None:
        raise ValueError(f"encode_sqz: {problem[0]}{problem[1]}")
    packed = zlib.compress(text, 9)
    kind, stored = (spec.HEADER_ZLIB, packed) if len(packed) < len(text) else (0, text)
    if len(stored) > spec.MAX_HEADER_BYTES:
        raise ValueError(
            f"encode_sqz: header is {len(stored)} bytes, the limit is "
            f"{spec.MAX_HEADER_BYTES >> 20} MiB"
        )
    return bytes([kind]) + varint(len(stored)) + stored


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists, as JSON would hold it."""
    if isinstance(value, dict):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
    return value


def read_header(r: Reader) -> dict[str, Any]:
    """Parse and check the header record at ``r.pos``: the header dict, with the standard
    class list and the preprocessing defaults filled in."""
    kind = r.u8("header encoding", spec.HEADER_JSON, spec.HEADER_ZLIB)
    size = r.varint("header length", 1, spec.MAX_HEADER_BYTES)
    at = r.pos
    raw = r.take(size, "header")
    if kind == spec.HEADER_ZLIB:
        raw = _inflate(r, raw, at)
    try:
        header: dict[str, Any] = parse_json(raw)  # a dict once content_problem is None
    except (ValueError, RecursionError) as exc:  # ValueError: UTF-8 and JSON
        r.fail(
            f"header at byte {at} is not valid (zlib-compressed) JSON: {exc}",
            field="header",
            offset=at,
        )
    problem = content_problem(header)
    if problem is not None:
        field, message = problem
        r.fail(f"{field} at byte {at}{message}", field=field, offset=at)
    if header["preprocess"] is not None:
        header["preprocess"] = complete_preprocess(header["preprocess"])
    if isinstance(header["classes"], str):
        header["classes"] = spec.standard_class_names(header["classes"])
    return header


def _inflate(r: Reader, raw: bytes, at: int) -> bytes:
    """The bytes of the one zlib stream ``raw``: not unfinished, followed by nothing and
    inflating to at most ``spec.MAX_HEADER_JSON_BYTES``."""
    inflate = zlib.decompressobj()
    try:
        # One byte over the limit tells "too large" from "exactly the limit".
        out = inflate.decompress(raw, spec.MAX_HEADER_JSON_BYTES + 1)
    except zlib.error as exc:
        r.fail(
            f"header at byte {at} is not valid (zlib-compressed) JSON: {exc}",
            field="header",
            offset=at,
        )
    too_large = len(out) > spec.MAX_HEADER_JSON_BYTES
    if too_large or inflate.unconsumed_tail or not inflate.eof or inflate.unused_data:
        r.fail(
            f"header at byte {at} is not one zlib stream of <= "
            f"{spec.MAX_HEADER_JSON_BYTES >> 20} MiB",
            field="header",
            offset=at,
        )
    return out


def parse_json(raw: bytes) -> Any:
    """The JSON value of UTF-8 ``raw`` under the restrictions of section 3.

    Raises:
        ValueError: not UTF-8, not JSON, or a NaN/Infinity literal, an infinite number, an
            integer outside int64, a repeated member name, an unpaired surrogate or nesting
            deeper than 64 (the message says which).
    """
    value = json.loads(
        raw.decode("utf-8"),
        parse_constant=_reject_constant,
        parse_int=_parse_int,
        parse_float=_parse_float,
        object_pairs_hook=_unique_members,
    )
    _check_strings_and_depth(value)
    return value


def content_problem(header: Any) -> tuple[str, str] | None:
    """(field, what is wrong) where ``header`` (parsed JSON) breaks section 3, else None."""
    if not isinstance(header, dict) or set(header) != set(KEYS):
        return "header", " must be an object with model, config, preprocess, classes"
    if not isinstance(header["model"], str) or not header["model"]:
        return "header", ": model must be a non-empty string and config an object"
    if not isinstance(header["config"], dict):
        return "header", ": model must be a non-empty string and config an object"
    if header["preprocess"] is not None:
        problem = preprocess_problem(header["preprocess"])
        if problem is not None:
            return "header preprocess", f" is invalid: {problem}"
    classes = header["classes"]
    if isinstance(classes, str):
        if classes not in spec.STANDARD_CLASS_LISTS:
            return "header classes", f" names an unknown class list {classes!r}"
    elif classes is not None and not (
        isinstance(classes, list) and all(isinstance(c, str) for c in classes)
    ):
        return "header classes", " must be a list name, a list of strings or null"
    return None


def preprocess_problem(value: Any) -> str | None:
    """What is wrong with a header's ``"preprocess"`` object (section 3), or None."""
    if not isinstance(value, dict):
        return "must be null or an object"
    known = _PREPROCESS_REQUIRED + _PREPROCESS_OPTIONAL
    unknown = sorted(set(value) - set(known))
    missing = [key for key in _PREPROCESS_REQUIRED if key not in value]
    if unknown or missing:
        return f"unknown members {unknown}, missing members {missing}"
    channels = value.get("channels", 3)
    checks = {
        "name": isinstance(value["name"], str),
        "resize": _is_int(value["resize"]) and value["resize"] >= 0,
        "crop": _is_int(value["crop"]) and value["crop"] >= 1,
        "channels": _is_int(channels) and channels in (1, 3),
        "channel_order": value.get("channel_order", "RGB") in ("RGB", "BGR"),
        "value_scale": _is_number(value.get("value_scale", 1))
        and value.get("value_scale", 1) in (1, 255),
        "interpolation": value.get("interpolation", "bilinear") in ("bilinear", "bicubic"),
    }
    for key in ("mean", "std"):
        values = value[key]
        checks[key] = (
            isinstance(values, list)
            and len(values) == channels
            and all(_is_number(v) and (key == "mean" or v > 0) for v in values)
        )
    bad = [key for key, ok in checks.items() if not ok]
    return f"bad members {bad} (see docs/FORMAT.md section 3)" if bad else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_int(text: str) -> int:
    # Bound the digits first: Python refuses to convert more than 4300 of them.
    value = int(text) if len(text) <= 20 else spec.JSON_INT_MAX + 1
    if not spec.JSON_INT_MIN <= value <= spec.JSON_INT_MAX:
        raise ValueError(f"integer {text[:24]} is outside -2**63..2**63-1")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:24]} is not finite as a binary64")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"member name {key[:24]!r} is repeated in an object")
        out[key] = value
    return out


def _check_strings_and_depth(value: Any) -> None:
    """Unpaired surrogates (``\\ud800``) and nesting deeper than ``spec.MAX_JSON_DEPTH``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > spec.MAX_JSON_DEPTH:
                raise ValueError(f"arrays and objects nest deeper than {spec.MAX_JSON_DEPTH}")
            children = list(item.items()) if isinstance(item, dict) else [(None, v) for v in item]
            for key, child in children:
                if key is not None:
                    _check_string(key)
                stack.append((child, depth + 1))
        elif isinstance(item, str):
            _check_string(item)


def _check_string(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"string {text[:24]!r} holds an unpaired surrogate") from None
