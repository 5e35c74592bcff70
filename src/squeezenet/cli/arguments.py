"""How commands read their arguments: a MODEL, the device, and the paths a user names.

One rule for a MODEL argument, shared by eval, predict, export and bench: it is a model file when
:func:`squeezenet.workflows.load.is_model_file` says so, else a registry name.
"""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squeezenet.errors import (
    ConfigError,
    InputError,
    MissingDependencyError,
    MissingFileError,
    UserError,
)

if TYPE_CHECKING:
    from torch import nn

    from squeezenet.arch.preprocess import Preprocess
    from squeezenet.deploy.onnx_file import ModelInfo
    from squeezenet.io.weights import LoadedModel

PathArg = str | Path | None


def given(**options: Any) -> dict[str, Any]:
    """The options the user gave (those not None), by name."""
    return {name: value for name, value in options.items() if value is not None}


def require_torch(what: str) -> None:
    """Raise a one-line :class:`MissingDependencyError` naming the pip command when PyTorch is
    not installed (the light install), for ``what`` (e.g. ``"squeezenet train"``)."""
    from squeezenet.cli.options import HAS_TORCH
    from squeezenet.errors import pip_command

    if not HAS_TORCH:
        raise MissingDependencyError(
            f"{what} needs PyTorch, which this install does not have: {pip_command('torch')}"
        )


def runtime_engine(engine: str, model: str, calib: str | None) -> bool:
    """Whether ``--engine`` is a torch-free runtime engine (numpy, onnxruntime-graph); any other
    engine needs torch (checked here).

    Raises:
        ConfigError: a runtime engine with ``--calib`` or an exported ``.onnx``.
        MissingDependencyError: a torch engine in the light install.
    """
    from squeezenet.runtime.classifier import RUNTIME_ENGINES

    if engine not in RUNTIME_ENGINES:
        require_torch(f"--engine {engine}")
        return False
    if calib is not None:
        raise ConfigError(f"--engine {engine} runs float32: drop --calib (it calibrates int8)")
    if model.endswith(".onnx"):
        raise ConfigError(
            f"an exported .onnx runs as it is, in onnxruntime or openvino, not --engine {engine}"
        )
    return True


def resolve_device(device: str | None) -> str:
    """``--device``, or cuda when there is one, else cpu."""
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def load_model_file(model: str, command: str, runtime: str = "onnxruntime") -> LoadedModel:
    """MODEL of a command that needs trained weights and preprocessing (eval, predict): a
    weights file, a ``.sqz``, or an ``.onnx`` this package exported (run in ``runtime``, after
    its self-check on this machine).

    Raises:
        ConfigError: ``model`` is a registry name, which has neither.
        MissingFileError / FileFormatError: no such file, or not a model file (from load_any).
        ModelCheckError: an ``.onnx`` whose self-check fails on this machine.
    """
    from squeezenet.workflows.load import ONNX_SUFFIX, is_model_file, load_any, load_onnx

    if model.endswith(ONNX_SUFFIX):
        return load_onnx(model, runtime)
    if not is_model_file(model):
        raise ConfigError(
            f"{command} needs a model file (.safetensors, .sqz or an exported .onnx), got "
            f"{model!r}, which names a registry model without trained weights (write ./{model} "
            "for a file of that name)"
        )
    return load_any(model)


def exported_runtime(engine: str, calib: str | None) -> str:
    """The runtime an exported ``.onnx`` runs in for ``--engine`` (torch, the default: ONNX
    Runtime): the file runs as it is, never re-exported or re-quantized.

    Raises:
        ConfigError: ``--calib``, or an engine other than torch, onnxruntime or openvino.
    """
    if calib is not None or engine not in ("torch", "onnxruntime", "openvino"):
        raise ConfigError(
            "an exported .onnx file runs as it is, in onnxruntime (the default) or openvino: "
            "drop --calib and choose --engine onnxruntime or openvino"
        )
    return "onnxruntime" if engine == "torch" else engine


def load_model_arg(
    model: str,
) -> tuple[nn.Module, tuple[int, int, int], str, Preprocess | None]:
    """MODEL of a command that also takes a registry name (export, bench).

    Returns:
        The model in eval mode (a registry name: random weights, seed 0), its input shape
        (C, H, W) (a file's own crop, else the registry's natural size), its registry name and
        its file's preprocessing (None for a registry name).
    """
    network, shape, name, preprocess, _ = load_model_arg_info(model)
    return network, shape, name, preprocess


def load_model_arg_info(
    model: str,
) -> tuple[nn.Module, tuple[int, int, int], str, Preprocess | None, ModelInfo]:
    """:func:`load_model_arg` and what an exported file says of the model (name, config,
    preprocessing, class names), the registry's preprocessing preset where the file has none."""
    from squeezenet.arch.preprocess import PRESETS
    from squeezenet.deploy.onnx_file import ModelInfo
    from squeezenet.models import create_model, get_spec
    from squeezenet.workflows.load import is_model_file, load_any

    if not is_model_file(model):
        spec = get_spec(model)
        shape = (spec.config.in_channels, spec.input_size, spec.input_size)
        config = dataclasses.asdict(spec.config) if dataclasses.is_dataclass(spec.config) else {}
        info = ModelInfo(model, config, PRESETS[spec.facts.preprocess].to_dict())
        return create_model(model, seed=0).eval(), shape, model, None, info
    loaded = load_any(model)
    size = loaded.preprocess.crop if loaded.preprocess else get_spec(loaded.model_name).input_size
    channels = int(loaded.config.get("in_channels", 3))
    pre = loaded.preprocess or PRESETS[get_spec(loaded.model_name).facts.preprocess]
    preprocess = pre.to_dict()
    info = ModelInfo(loaded.model_name, loaded.config, preprocess, loaded.class_names)
    return loaded.model, (channels, size, size), loaded.model_name, loaded.preprocess, info


@contextmanager
def user_paths(reads: Iterable[PathArg] = (), writes: Iterable[PathArg] = ()) -> Iterator[None]:
    """Inside the block, an OS error on a path the user named is a one-line user error.

    Missing files, a folder where a file belongs (or the reverse) and permission problems
    become :class:`MissingFileError` (no such file) or :class:`InputError`, naming the path.
    An OS error counts as one on a named path when it is on the path or inside it, and for
    ``writes`` also on a folder above it (creating it) or on the temporary file that an atomic
    write puts beside it (``.NAME.*``, :mod:`squeezenet.atomic`). Any other ``OSError`` is a
    bug and keeps its traceback.
    """
    named = [(False, Path(p)) for p in reads if p is not None]
    named += [(True, Path(p)) for p in writes if p is not None]
    try:
        yield
    except UserError:
        raise
    except OSError as exc:
        for write, path in named:
            culprit = _culprit(exc, path, write=write)
            if culprit is not None:  # "" when the error is on ``path`` itself
                raise _user_error(exc, "write" if write else "read", path, culprit) from exc
        raise


def _culprit(exc: OSError, named: Path, *, write: bool) -> str | None:
    """The path in ``exc`` that ``named`` accounts for ("" when it is ``named`` itself)."""
    target = Path(os.path.abspath(named))
    for filename in (exc.filename, exc.filename2):
        if not isinstance(filename, str | os.PathLike):
            continue
        path = Path(os.path.abspath(filename))
        if path == target:
            return ""
        if target in path.parents or (write and path in target.parents):
            return os.fspath(filename)
        if write and path.parent == target.parent and path.name.startswith(f".{target.name}."):
            return ""  # the temporary file of an atomic write of ``named``
    return None


# What to do about the OS errors a user causes most often, by errno.
_HINTS = {
    errno.ENOENT: "check the path",
    errno.EISDIR: "name a file, not a folder",
    errno.ENOTDIR: "a file stands where a folder should be",
    errno.EEXIST: "a file stands where a folder should be",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
}


def _user_error(exc: OSError, verb: str, named: Path, culprit: str) -> UserError:
    reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
    where = f" ({culprit})" if culprit else ""
    hint = _HINTS.get(exc.errno or 0)
    message = f"cannot {verb} {named}: {reason}{where}" + (f"; {hint}" if hint else "")
    if isinstance(exc, FileNotFoundError):
        return MissingFileError(message)
    return InputError(message)
