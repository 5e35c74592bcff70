"""The errors a user can cause: the only exceptions the CLI turns into one line and exit 2.

Every other exception is a bug and keeps its traceback (exit 1). Each class also derives from
the built-in exception a caller would expect (``ValueError``, ``FileNotFoundError``), so code
that catches those keeps working. Messages name the problem and the fix.

This module imports nothing: every layer may raise these.
"""

from __future__ import annotations


class SqueezeNetError(Exception):
    """Base of every exception this package raises on purpose."""


class UserError(SqueezeNetError):
    """Something the user can fix: an option, an input file, a missing dataset.

    The CLI prints ``error: <message>`` on one line and exits with status 2.
    """


class ConfigError(UserError, ValueError):
    """An option or config field has a value outside what it accepts (the message names both)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class InputError(UserError, ValueError):
    """An input (an image, a dataset, a run folder) cannot be used as it is."""


DIST_NAME = "squeezenet-dc"  # the distribution's name on PyPI (``squeezenet`` is another's)


def pip_command(extra: str) -> str:
    """The pip command that adds ``extra`` to this package (for MissingDependencyError)."""
    return f"pip install '{DIST_NAME}[{extra}]'"


class MissingDependencyError(UserError, ImportError):
    """An optional package a feature needs is not installed (the message names the pip command)."""


class FileFormatError(UserError, ValueError):
    """Bytes that are not a valid file of the expected format.

    Attributes:
        field: the field that is wrong, e.g. ``"layer 3 codebook"`` ("" when not known).
        offset: the byte offset where the field starts (-1 when not known).
    """

    def __init__(self, message: str, *, field: str = "", offset: int = -1) -> None:
        super().__init__(message)
        self.field = field
        self.offset = offset
