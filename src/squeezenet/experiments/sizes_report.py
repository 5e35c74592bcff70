"""The Table 2 section of the report: the published Deep Compression SqueezeNet re-encoded by
this package, sizes and (when measured) accuracy, from ``benchmarks/bench_sizes.py``'s
``sizes.json``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from squeezenet.experiments.report import ReportSection, provenance_text, read_json

SIZES_JSON = "sizes.json"  # what benchmarks/bench_sizes.py writes into a result folder


def sizes_markdown(result: dict[str, Any]) -> str:
    """The Table 2 rows of ``benchmarks/bench_sizes.py`` as a markdown table."""
    rows = result["rows"]
    have_acc = any("accuracy" in row for row in rows)
    head = ["model", "bytes", "MiB", "x smaller than AlexNet"]
    if have_acc:
        head += ["top-1", "top-5", "Δ top-1"]
    head += ["paper (size, ratio, top-1)"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|",
    ]
    base = next((r["accuracy"]["top1"] for r in rows if "accuracy" in r), None)
    for row in rows:
        cells = [
            row["model"],
            f"{row['bytes']:,}",
            f"{row['mib']:.3f}",
            f"{row['ratio_alexnet']:.0f}",
        ]
        if have_acc:
            acc = row.get("accuracy")
            if acc is None:
                cells += ["—", "—", "—"]
            else:
                delta = 100 * (acc["top1"] - base) if base is not None else 0.0
                cells += [f"{acc['top1']:.3f}", f"{acc['top5']:.3f}", f"{delta:+.1f} pt"]
        paper = row["paper"]
        cells.append(f"{paper['size']}, {paper['ratio']}, {paper['top1']:.1%}" if paper else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _sizes_section(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            "### Table 2: sizes",
            "",
            "Published Deep Compression SqueezeNet re-encoded by this package, no retraining"
            + (f"; accuracy on `{result['data']}`" if result.get("data") else "")
            + ".",
            "",
            provenance_text(result.get("meta")),
            "",
            sizes_markdown(result).rstrip(),
        ]
    )


def render_sizes(
    found: Sequence[tuple[Path, dict[str, Any]]], figures: Path, rel: str
) -> dict[str, str]:
    """``sizes``, ``sizes-2``, ...: one table per ``sizes.json``."""
    return {
        f"sizes{'' if index == 0 else f'-{index + 1}'}": _sizes_section(sizes)
        for index, (_, sizes) in enumerate(found)
    }


SECTION = ReportSection(
    "sizes", SIZES_JSON, 40, lambda folder: read_json(folder, SIZES_JSON), render_sizes
)
