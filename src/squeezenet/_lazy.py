"""Package namespaces that import their members on first use (PEP 562).

A package's ``__init__`` re-exports its public API without importing it, so that importing one
light module (``squeezenet.formats.sqz_decode``, ``squeezenet.data.presets``) never loads torch
through a parent package. Static type checkers read the ``TYPE_CHECKING`` imports instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, members: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, which exports ``members``.

    Args:
        package: the package's ``__name__``.
        members: public name -> the submodule (relative to ``package``) that defines it.
    """

    def getattr_(name: str) -> Any:
        module = members.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def dir_() -> list[str]:
        return sorted(members)

    return getattr_, dir_
