"""Regenerate the experiment sections of ``docs/RESULTS.md`` (and their figures) from result
folders: the parts every section shares (finding the sections, loading result folders, splicing
the markers, plotting).

Each experiment's section renderer sits beside the experiment, in a module
``squeezenet/experiments/<name>_report.py`` that defines ``SECTION = ReportSection(...)``: the
result file that marks its folders, how to load one and how to render what was loaded.
:func:`report_sections` finds every such module, so a new section is that one file.

Each section sits between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->``; a rerun
replaces exactly those lines and leaves the hand-written rest of the file alone. Sections that
are not there yet are appended. Every section names the command and the machine it came from.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from squeezenet.atomic import atomic_write_bytes
from squeezenet.errors import InputError, MissingFileError
from squeezenet.experiments.provenance import describe_machine
from squeezenet.experiments.verdicts import Verdict

T = TypeVar("T")
# section name -> (folder, loaded result) for each folder that holds that section's result file
Results = dict[str, list[tuple[Path, Any]]]
_PACKAGE = __name__.rpartition(".")[0]


@dataclass(frozen=True)
class ReportSection(Generic[T]):
    """One experiment's part of the report: the ``SECTION`` of its ``*_report`` module."""

    name: str  # its key in :data:`Results`, e.g. "dsd"
    file: str  # the result file whose presence marks a folder of this experiment
    order: int  # lower first, in the sections and in the appendix of a new document
    load: Callable[[Path], T]  # a folder holding ``file`` -> its result
    # (folder, result) of every folder given (possibly none), the figures folder and its link
    # from the document -> section name -> markdown
    render: Callable[[Sequence[tuple[Path, T]], Path, str], dict[str, str]]
    what: str = ""  # said beside ``file`` when a folder holds no results, e.g. "sweep"

    @property
    def expected(self) -> str:
        """The result file as the error for a folder without results names it."""
        return f"{self.file} ({self.what})" if self.what else self.file


def report_sections() -> list[ReportSection[Any]]:
    """The ``SECTION`` of every ``squeezenet.experiments.*_report`` module, in their order.

    A ``*_report`` module without one (``pipeline_report``: the pipeline's own report) adds no
    section."""
    found: list[ReportSection[Any]] = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.endswith("_report"):
            module = importlib.import_module(f"{_PACKAGE}.{info.name}")
            section = getattr(module, "SECTION", None)
            if isinstance(section, ReportSection):
                found.append(section)
    return sorted(found, key=lambda section: section.order)


def read_json(folder: Path, name: str) -> dict[str, Any]:
    """The JSON document ``name`` of a result folder."""
    document: dict[str, Any] = json.loads((folder / name).read_text())
    return document


def load_results(folders: Iterable[str | Path]) -> Results:
    """Read every result folder (or file); unknown folders are an error naming what is
    expected."""
    sections = report_sections()
    found: Results = {section.name: [] for section in sections}
    for item in folders:
        path = Path(item)
        folder = path if path.is_dir() else path.parent
        if not path.exists():
            raise MissingFileError(f"result folder not found: {path}")
        known = [section for section in sections if (folder / section.file).is_file()]
        for section in known:
            found[section.name].append((folder, section.load(folder)))
        if not known:
            expected = [section.expected for section in sections]
            raise InputError(
                f"{path} holds no results: expected {', '.join(expected[:-1])} or {expected[-1]}"
            )
    return found


def provenance_text(meta: dict[str, Any] | None) -> str:
    """The command and machine a result came from, as the lines under a section's intro."""
    if not meta:
        return "Command and machine: not recorded."
    command = meta.get("command", "not recorded")
    machine = describe_machine(meta["machine"]) if "machine" in meta else "not recorded"
    return f"Command: `{command}`  \nMachine: {machine}."


def verdict_line(verdict: Verdict) -> str:
    """The bold verdict sentence under a section (sweeps and DSD)."""
    return f"**Verdict: {verdict.outcome}.** Claim: {verdict.claim}. Measured: {verdict.evidence}."


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: T) -> T:
    """Lay out ``fig``, write it to ``path`` as a 110-dpi PNG and close it; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render(results: Results, figures: Path, rel: str) -> dict[str, str]:
    """Section name -> markdown; figures are written into ``figures`` (linked as ``rel``)."""
    figures.mkdir(parents=True, exist_ok=True)
    sections: dict[str, str] = {}
    for section in report_sections():
        sections.update(section.render(results.get(section.name, []), figures, rel))
    return sections


APPENDIX = "## Experiments (regenerated by `squeezenet report`)"


def update_markdown(text: str, sections: dict[str, str]) -> str:
    """Replace each ``<!-- report:NAME -->`` ... ``<!-- /report:NAME -->`` block with the new
    section; sections without a block are appended under one heading."""
    missing = []
    for name, body in sections.items():
        start, end = f"<!-- report:{name} -->", f"<!-- /report:{name} -->"
        block = f"{start}\n{body}\n{end}"
        if start in text and end in text:
            head, _, rest = text.partition(start)
            _, _, tail = rest.partition(end)
            text = head + block + tail
        else:
            missing.append(block)
    if missing:
        if APPENDIX not in text:
            text = text.rstrip("\n") + f"\n\n{APPENDIX}\n"
        text = text.rstrip("\n") + "\n\n" + "\n\n".join(missing) + "\n"
    return text


@dataclass(frozen=True)
class ReportOutcome:
    """What :func:`write_report` wrote."""

    document: Path  # the markdown file
    figures: Path  # the folder of its figures
    sections: dict[str, str]  # section name -> the markdown now between its markers

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": str(self.document),
            "figures": str(self.figures),
            "sections": self.sections,
        }


def write_report(
    folders: Iterable[str | Path], document: str | Path, figures: str | Path
) -> ReportOutcome:
    """Regenerate the report sections of ``document`` (created if missing) from result
    ``folders``, and the figures in ``figures``; the rest of the file stays as it is.

    Raises:
        MissingFileError: a result folder, or the folder of ``document``, does not exist.
        InputError: a folder holds no results.
    """
    loaded = load_results(folders)
    document, figures = Path(document), Path(figures)
    if not document.parent.is_dir():
        raise MissingFileError(
            f"cannot write {document}: folder {document.parent} does not exist; create it first"
        )
    sections = render(loaded, figures, _relative_link(figures, document))
    before = document.read_text() if document.is_file() else "# Results\n"
    atomic_write_bytes(document, update_markdown(before, sections).encode())
    return ReportOutcome(document, figures, sections)


def _relative_link(figures: Path, document: Path) -> str:
    """``figures`` as a link from ``document``'s folder (POSIX separators)."""
    return Path(os.path.relpath(figures.resolve(), document.resolve().parent)).as_posix()
