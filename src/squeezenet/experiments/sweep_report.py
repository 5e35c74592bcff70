"""The design-space sweeps' sections of the report (Fig. 3a, Fig. 3b, Table 3): one table and
figure per one-field series of the records in the sweep folders (``results.jsonl``)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from squeezenet.experiments.report import (
    ReportSection,
    provenance_text,
    pyplot,
    save_figure,
    verdict_line,
)
from squeezenet.experiments.sweep import RESULTS, Trial, budget_description, read_records
from squeezenet.experiments.verdicts import by_value, points, sweep_verdict

PAPER_FIGURES = {
    "squeeze_ratio": ("Fig. 3a", "squeeze ratio (SR)"),
    "pct_3x3": ("Fig. 3b", "share of 3x3 filters (pct_3x3)"),
    "bypass": ("Table 3", "bypass"),
}
# Paper (ImageNet top-1 at each point) where PAPER.md states it, for the tables' last column.
PAPER_POINTS = {
    ("squeeze_ratio", "0.125"): "top-5 80.3 % (4.8 MB)",
    ("squeeze_ratio", "0.75"): "top-5 ≈ 86.0 %, the plateau (≈ 19 MB)",
    ("squeeze_ratio", "1.0"): "top-5 ≈ 86.0 % (≈ 24 MB)",
    ("pct_3x3", "0.5"): "top-5 ≈ 85.6 %, the plateau",
    ("bypass", "none"): "57.5 % / 80.3 %",
    ("bypass", "simple"): "60.4 % / 82.5 %",
    ("bypass", "complex"): "58.8 % / 82.0 %",
}


def _series(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Field -> the records of one-field series: records that agree on every other override
    (and on the budget) and differ in this one. A record may belong to several series (the
    SR = 0.5, pct_3x3 = 0.5 point of both Fig. 3 sweeps)."""
    out: dict[str, list[dict[str, Any]]] = {}
    fields = sorted({k for r in records for k in r["trial"]["overrides"]})
    for name in fields:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            trial = record["trial"]
            if name not in trial["overrides"]:
                continue
            rest = {k: v for k, v in trial["overrides"].items() if k != name}
            train = {k: v for k, v in trial["train"].items() if k != "seed"}  # seeds pool
            context = json.dumps(
                [
                    trial["model"],
                    trial["data"],
                    train,
                    rest,
                    trial["train_images"],
                    trial["test_images"],
                ],
                sort_keys=True,
            )
            groups[context].append(record)
        best = max(groups.values(), key=len, default=[])
        if len({json.dumps(r["trial"]["overrides"][name]) for r in best}) >= 2:
            out[name] = sorted(
                best,
                key=lambda r: (_order(r["trial"]["overrides"][name]), r["trial"]["train"]["seed"]),
            )
    return out


def _order(value: Any) -> Any:
    order = {"none": 0, "simple": 1, "complex": 2}
    return (0, value) if isinstance(value, (int, float)) else (1, order.get(str(value), 9), value)


def _sweep_provenance(name: str, records: list[dict[str, Any]]) -> list[str]:
    """The command and machine of each record shown; with several, which rows each produced (a
    rerun of another sweep reuses the points it shares, so one table can come from two)."""
    by_meta: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {}
    for record in records:
        key = json.dumps(record.get("meta"), sort_keys=True)
        by_meta.setdefault(key, (record.get("meta"), []))[1].append(record)
    if len(by_meta) == 1:
        return [provenance_text(next(iter(by_meta.values()))[0])]
    lines = []
    for meta, members in by_meta.values():
        rows = ", ".join(
            f"{p.value} (seed{'s' if len(p.seeds) > 1 else ''} {', '.join(map(str, p.seeds))})"
            for p in points(name, members)
        )
        lines.append(
            f"Rows {name} = {rows}: " + provenance_text(meta).replace("Command", "command", 1)
        )
    return ["  \n".join(lines)]


def _sweep_section(name: str, records: list[dict[str, Any]], figure: Path | None, rel: str) -> str:
    label, what = PAPER_FIGURES.get(name, ("", name))
    trial = Trial.from_dict(records[0]["trial"])
    fixed = {k: v for k, v in trial.overrides if k != name}
    title = f"### {label + ': ' if label else ''}{what} sweep on {trial.data}".rstrip()
    seconds = sum(float(r["seconds"]) for r in records)
    pts = points(name, records)
    counts = sorted({len(p.seeds) for p in pts})
    lines = [
        title,
        "",
        f"Model `{trial.model}`{' with ' + str(fixed) if fixed else ''}; per-trial budget: "
        f"{budget_description(trial, seed=False)}; top-1 on {records[0]['test_images']:,} test "
        f"images; {seconds / 60:.0f} min of training summed over these {len(records)} trials; "
        f"{' to '.join(str(c) for c in counts)} seed(s) per point. Top-1 is the mean over "
        "seeds ± their sample standard deviation.",
        "",
    ]
    lines += _sweep_provenance(name, records)
    lines += [
        "",
        "| " + name + " | params | MiB (32-bit) | seeds | top-1 per seed | top-1 mean ± std "
        "| top-5 mean | paper (ImageNet) |",
        "|---|---:|---:|---|---|---:|---:|---|",
    ]
    collapsed = []
    for point, members in zip(pts, by_value(name, records), strict=True):
        failed = any(r.get("collapsed") for r in members)
        if failed:
            collapsed.append(str(point.value))
        top5 = sum(float(r["top5"]) for r in members) / len(members)
        spread = "" if len(point.seeds) < 2 else f" ± {point.std:.4f}"
        mark = " †" if failed else ""
        lines.append(
            f"| {point.value} | {members[0]['params']:,} | "
            f"{members[0]['size_bytes'] / 2**20:.2f} | {', '.join(map(str, point.seeds))} | "
            f"{', '.join(f'{t:.4f}' for t in point.top1)} | {point.mean:.4f}{spread}{mark} | "
            f"{top5:.4f} | {PAPER_POINTS.get((name, str(point.value)), '—')} |"
        )
    if collapsed:
        lines += [
            "",
            f"† training collapsed (loss stuck at ln(classes); `fit`'s collapse "
            f"warning fired) for {', '.join(collapsed)}.",
        ]
    verdict = sweep_verdict(name, pts)
    if verdict is not None:
        lines += ["", verdict_line(verdict)]
    if figure is not None:
        lines += ["", f"![{label or name}: top-1 against model size]({rel}/{figure.name})"]
    return "\n".join(lines)


def _plot_series(name: str, records: list[dict[str, Any]], path: Path) -> Path:
    plt = pyplot()
    label, what = PAPER_FIGURES.get(name, ("", name))
    fig, ax = plt.subplots(figsize=(6, 4.2))
    pts = points(name, records)
    sizes = [members[0]["size_bytes"] / 2**20 for members in by_value(name, records)]
    top1 = [100 * p.mean for p in pts]
    spread = [0.0 if len(p.seeds) < 2 else 100 * p.std for p in pts]
    ax.errorbar(sizes, top1, yerr=spread, fmt="o-", color="tab:blue", capsize=3)
    for x, y, p in zip(sizes, top1, pts, strict=True):
        ax.annotate(
            f"{p.value}",
            (x, y),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    ax.set_xlabel("model size (MiB, 32-bit)")
    ax.set_ylabel("top-1 (%)")
    trial = records[0]["trial"]
    ax.set_title(f"{label}: {what} ({trial['data']}, {trial['train']['epochs']} epochs/trial)")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def render_sweeps(
    found: Sequence[tuple[Path, list[dict[str, Any]]]], figures: Path, rel: str
) -> dict[str, str]:
    """``sweep-<field>`` sections from the records of every sweep folder, paper figures first."""
    sections: dict[str, str] = {}
    series = _series([record for _, records in found for record in records])
    ordered = [n for n in PAPER_FIGURES if n in series] + [
        n for n in series if n not in PAPER_FIGURES
    ]
    for name in ordered:
        records = series[name]
        figure = None
        if name in ("squeeze_ratio", "pct_3x3"):
            figure = _plot_series(name, records, figures / f"sweep_{name}.png")
        sections[f"sweep-{name}"] = _sweep_section(name, records, figure, rel)
    return sections


SECTION = ReportSection("sweep", RESULTS, 10, read_records, render_sweeps, what="sweep")
