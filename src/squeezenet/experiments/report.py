"""Regenerate the experiment sections of ``docs/RESULTS.md`` (and their figures) from result
folders: sweeps (``results.jsonl``), sensitivity (``sensitivity.json``), DSD (``dsd.json``) and
the sizes table (``sizes.json``, from ``benchmarks/bench_sizes.py``).

Each section sits between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->``; a rerun
replaces exactly those lines and leaves the hand-written rest of the file alone. Sections that
are not there yet are appended. Every section names the command and the machine it came from.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squeezenet.atomic import atomic_write_bytes
from squeezenet.errors import InputError, MissingFileError
from squeezenet.experiments.dsd import DSD_JSON
from squeezenet.experiments.provenance import describe_machine
from squeezenet.experiments.sensitivity import SensitivityResult, plot_sensitivity
from squeezenet.experiments.sensitivity_run import SENSITIVITY_JSON
from squeezenet.experiments.sweep import RESULTS, Trial, budget_description, read_records
from squeezenet.experiments.verdicts import (
    Verdict,
    by_value,
    gain_verdict,
    points,
    sweep_verdict,
)

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


@dataclass
class Results:
    sweeps: list[dict[str, Any]] = field(default_factory=list)  # records of every sweep folder
    sensitivity: list[tuple[Path, SensitivityResult]] = field(default_factory=list)
    dsd: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    sizes: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)


def load_results(folders: Iterable[str | Path]) -> Results:
    """Read every result folder (or file); unknown folders are an error naming what is
    expected."""
    found = Results()
    for item in folders:
        path = Path(item)
        folder = path if path.is_dir() else path.parent
        if not path.exists():
            raise MissingFileError(f"result folder not found: {path}")
        known = False
        if (folder / RESULTS).is_file():
            found.sweeps.extend(read_records(folder))
            known = True
        if (folder / SENSITIVITY_JSON).is_file():
            data = json.loads((folder / SENSITIVITY_JSON).read_text())
            found.sensitivity.append((folder, SensitivityResult.from_dict(data)))
            known = True
        if (folder / DSD_JSON).is_file():
            found.dsd.append((folder, json.loads((folder / DSD_JSON).read_text())))
            known = True
        if (folder / "sizes.json").is_file():
            found.sizes.append((folder, json.loads((folder / "sizes.json").read_text())))
            known = True
        if not known:
            raise InputError(
                f"{path} holds no results: expected {RESULTS} (sweep), {SENSITIVITY_JSON}, "
                f"{DSD_JSON} or sizes.json"
            )
    return found


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


def _provenance(meta: dict[str, Any] | None) -> str:
    if not meta:
        return "Command and machine: not recorded."
    command = meta.get("command", "not recorded")
    machine = describe_machine(meta["machine"]) if "machine" in meta else "not recorded"
    return f"Command: `{command}`  \nMachine: {machine}."


def _sweep_provenance(name: str, records: list[dict[str, Any]]) -> list[str]:
    """The command and machine of each record shown; with several, which rows each produced (a
    rerun of another sweep reuses the points it shares, so one table can come from two)."""
    by_meta: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {}
    for record in records:
        key = json.dumps(record.get("meta"), sort_keys=True)
        by_meta.setdefault(key, (record.get("meta"), []))[1].append(record)
    if len(by_meta) == 1:
        return [_provenance(next(iter(by_meta.values()))[0])]
    lines = []
    for meta, members in by_meta.values():
        rows = ", ".join(
            f"{p.value} (seed{'s' if len(p.seeds) > 1 else ''} {', '.join(map(str, p.seeds))})"
            for p in points(name, members)
        )
        lines.append(f"Rows {name} = {rows}: " + _provenance(meta).replace("Command", "command", 1))
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


def verdict_line(verdict: Verdict) -> str:
    """The bold verdict sentence under a section (sweeps and DSD)."""
    return f"**Verdict: {verdict.outcome}.** Claim: {verdict.claim}. Measured: {verdict.evidence}."


def _plot_series(name: str, records: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


ONE_BY_ONE = ("squeeze", "expand1x1", "conv10")


def sensitivity_findings(result: SensitivityResult) -> dict[str, Any]:
    """The paper's two claims checked on ``result``: mean drops of 1x1 vs 3x3 layers at each
    sparsity where both groups changed, and the layers with the largest top-5 loss."""
    out: dict[str, Any] = {"by_sparsity": []}
    base5 = result.baseline["top5"]
    for sparsity in result.config.sparsities:
        groups: dict[str, list[float]] = {"1x1": [], "3x3": []}
        for probe in result.probes:
            if probe.kind != "prune" or probe.value != sparsity or not probe.changed:
                continue
            if probe.layer.endswith("expand3x3"):
                groups["3x3"].append(result.drop(probe))
            elif any(probe.layer.endswith(k) for k in ONE_BY_ONE):
                groups["1x1"].append(result.drop(probe))
        if groups["1x1"] and groups["3x3"]:
            out["by_sparsity"].append(
                {
                    "sparsity": sparsity,
                    "mean_drop_1x1": sum(groups["1x1"]) / len(groups["1x1"]),
                    "mean_drop_3x3": sum(groups["3x3"]) / len(groups["3x3"]),
                    "layers_1x1": len(groups["1x1"]),
                    "layers_3x3": len(groups["3x3"]),
                }
            )
    highest = max(result.config.sparsities, default=0.5)
    for key, sparsity in (("at_50", 0.5), ("at_max", highest)):
        probes = [p for p in result.probes if p.kind == "prune" and p.value == sparsity]
        ranked = sorted(probes, key=lambda p: p.top5)
        out[key] = [
            {
                "layer": p.layer,
                "top5_drop": round(100 * (base5 - p.top5), 2),
                "top1_drop": round(result.drop(p), 2),
            }
            for p in ranked[:3]
        ]
    names = [layer["name"] for layer in result.layers]
    late = set(names[len(names) * 2 // 3 :])  # the last third of the layers in forward order
    at_50 = [p for p in result.probes if p.kind == "prune" and p.value == 0.5 and p.changed]
    out["top5_loss_over_5_at_50"] = [
        {"layer": p.layer, "top5_drop": round(100 * (base5 - p.top5), 2), "late": p.layer in late}
        for p in sorted(at_50, key=lambda p: p.top5)
        if 100 * (base5 - p.top5) >= 5.0
    ]
    rows = out["by_sparsity"]
    out["one_by_one_more_sensitive"] = (
        sum(r["mean_drop_1x1"] > r["mean_drop_3x3"] for r in rows) > len(rows) / 2 if rows else None
    )
    return out


def _sensitivity_section(result: SensitivityResult, figure: Path | None, rel: str) -> str:
    lines = _sensitivity_intro(result)
    if figure is not None:
        lines += [f"![Fig. 6a: top-1 against per-layer sparsity and bits]({rel}/{figure.name})", ""]
    lines += _sensitivity_table(result)
    lines += ["", "(· = the probe left the weights unchanged.)", ""]
    lines += ["Paper's findings on these weights:", ""]
    lines += _findings_lines(result, sensitivity_findings(result))
    return "\n".join(lines)


def _sensitivity_intro(result: SensitivityResult) -> list[str]:
    meta = result.meta
    return [
        f"### Fig. 6a: per-layer sensitivity of {meta.get('model_name', 'the model')}",
        "",
        f"Each of the {len(result.layers)} weight layers alone pruned to each sparsity "
        "(smallest magnitudes first; a layer's existing zeros count, so a sparsity below what "
        "it already has changes nothing and reuses the baseline) and, separately, its non-zero "
        "weights shared with k-means (linear init) at each bit width; top-1 on "
        f"{result.images} images of `{meta.get('source', {}).get('data', '?')}` (baseline "
        f"{result.baseline['top1']:.3f} / top-5 {result.baseline['top5']:.3f}). "
        f"{sum(p.changed for p in result.probes)} of {len(result.probes)} probes changed the "
        f"weights; {result.seconds:.0f} s.",
        "",
        _provenance(meta),
        "",
    ]


def _sensitivity_table(result: SensitivityResult) -> list[str]:
    """Top-1 drop per layer and probe, as markdown table lines."""
    header = ["layer", "sparsity now"]
    header += [f"{v:.0%}" for v in result.config.sparsities]
    header += [f"{v} bits" for v in result.config.bits]
    lines = [
        "Top-1 drop in points (negative: the probe gained):",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for layer in result.layers:
        cells = [layer["name"], f"{layer['sparsity']:.2f}"]
        for kind in ("prune", "bits"):
            cells += [  # "·": unchanged
                f"{result.drop(p):+.1f}" if p.changed else "·"
                for p in result.curve(layer["name"], kind)
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _findings_lines(result: SensitivityResult, findings: dict[str, Any]) -> list[str]:
    """The paper's claims (see :func:`sensitivity_findings`) as markdown list items."""
    lines = [
        f"- at {row['sparsity']:.0%} sparsity: mean top-1 drop of the 1x1 layers "
        f"{row['mean_drop_1x1']:+.2f} pt ({row['layers_1x1']} layers changed) vs the 3x3 "
        f"layers {row['mean_drop_3x3']:+.2f} pt ({row['layers_3x3']})"
        for row in findings["by_sparsity"]
    ]
    verdict = findings["one_by_one_more_sensitive"]
    if verdict is not None:
        lines.append(
            f"- 1x1 layers more sensitive than 3x3: **{'holds' if verdict else 'does not hold'}**"
            " at most of these sparsities."
        )
    if 0.5 in result.config.sparsities:
        heavy = findings["top5_loss_over_5_at_50"]
        described = ", ".join(
            f"{w['layer']} (−{w['top5_drop']:.1f}, {'late' if w['late'] else 'early'})"
            for w in heavy
        )
        late_count = sum(w["late"] for w in heavy)
        lines.append(
            "- paper: at 50 % most layers do not care and two late layers lose 5–10 points of "
            f"top-5; here {len(heavy)} layer(s) lose ≥ 5 points of top-5 at 50 %: "
            f"{described or 'none'} ({late_count} in the last third of the network). Layers "
            "the published file already prunes to ≥ 50 % are unchanged at 50 % here."
        )
    for key, what in (("at_50", "50 %"), ("at_max", "the highest sparsity")):
        if findings[key]:
            names = ", ".join(
                f"{w['layer']} (top-5 −{w['top5_drop']:.1f}, top-1 −{w['top1_drop']:.1f})"
                for w in findings[key]
            )
            lines.append(f"- largest top-5 losses at {what}: {names}")
    return lines


def _dsd_section(document: dict[str, Any]) -> str:
    config, phases, summary = document["config"], document["phases"], document["summary"]
    train = config["train"]
    lines = [
        f"### DSD on {config['data']}",
        "",
        f"`{config['model']}`, prune policy `{config['policy']}` in the sparse phase; epochs "
        f"dense / sparse / re-dense = {config['dense_epochs']} / {config['sparse_epochs']} / "
        f"{config['redense_epochs']}; batch {train['batch_size']}, LR {train['lr']:g} "
        f"({train['schedule']}, {train['warmup_epochs']:g}-epoch warm-up, restarted each phase), "
        f"re-dense LR x{config['redense_lr_scale']:g}"
        f"; training images: {config['train_images'] or 'all'}; top-1 on "
        f"{config.get('test_images') or 'all'} test images; "
        f"{sum(float(m.get('seconds', 0)) for m in phases.values()) / 60:.0f} min in all. The "
        "baseline continues the same dense model for the same epochs with the same two "
        "schedules and no mask.",
        "",
        _provenance(document.get("meta")),
        "",
        "| phase | epochs | LR | sparsity | top-1 | top-5 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in phases.items():
        lines.append(
            f"| {name} | {m['epochs']} | {m['lr']:g} | {m['sparsity']:.3f} | "
            f"{m['top1']:.4f} | {m['top5']:.4f} |"
        )
    if "gain_points" in summary:
        lines += [
            "",
            f"DSD {summary['dsd_top1']:.4f} vs equal-epoch dense baseline "
            f"{summary['baseline_top1']:.4f} after {summary['total_epochs']} epochs: "
            f"**{summary['gain_points']:+.2f} points** top-1 (paper, ImageNet: +4.3)"
            + _paired_text(summary.get("paired"))
            + ".",
        ]
    return "\n".join(lines)


def _paired_text(paired: dict[str, Any] | None) -> str:
    """The paired standard error and agreement of DSD's model against the baseline's."""
    if not paired:
        return ""
    return (
        f"; paired standard error {100 * paired['top1_diff_se']:.2f} points on "
        f"{paired['images']:,} images ({paired['only_dsd']} right only with DSD, "
        f"{paired['only_baseline']} only with the baseline), top-1 agreement "
        f"{paired['agreement']:.3f}"
    )


def _dsd_seed_groups(documents: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """DSD runs that differ only in their seed, groups of two or more, seeds in order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        config = dict(document["config"])
        config["train"] = {k: v for k, v in config["train"].items() if k != "seed"}
        groups.setdefault(json.dumps(config, sort_keys=True), []).append(document)
    return [
        sorted(group, key=lambda d: int(d["config"]["train"]["seed"]))
        for group in groups.values()
        if len(group) >= 2 and all("gain_points" in d["summary"] for d in group)
    ]


def _dsd_seeds_section(group: list[dict[str, Any]]) -> str:
    config = group[0]["config"]
    gains = [float(d["summary"]["gain_points"]) for d in group]
    dsd = [100 * float(d["summary"]["dsd_top1"]) for d in group]
    base = [100 * float(d["summary"]["baseline_top1"]) for d in group]
    verdict = gain_verdict("DSD beats dense training for the same epochs (paper: +4.3)", gains)
    lines = [
        f"### DSD on {config['data']}, over seeds",
        "",
        f"`{config['model']}`, the runs above that differ only in their seed; top-1 in points. "
        "Paired SE: the standard error of one seed's gain from the test images only one of the "
        "two models gets right (image noise); the spread of the gains over seeds adds the "
        "training noise, and the verdict is a t-test on it.",
        "",
        "| seed | dense start | DSD | equal-epoch dense baseline | gain | paired SE | agreement |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for document, gain, d, b in zip(group, gains, dsd, base, strict=True):
        start = 100 * float(document["phases"]["dense"]["top1"])
        seed = document["config"]["train"]["seed"]
        paired = document["summary"].get("paired")
        se, agree = ("—", "—") if not paired else (
            f"{100 * paired['top1_diff_se']:.2f}", f"{paired['agreement']:.3f}"
        )  # fmt: skip
        lines.append(f"| {seed} | {start:.2f} | {d:.2f} | {b:.2f} | {gain:+.2f} | {se} | {agree} |")
    lines.append(
        f"| mean ± std | | {statistics.fmean(dsd):.2f} ± {statistics.stdev(dsd):.2f} | "
        f"{statistics.fmean(base):.2f} ± {statistics.stdev(base):.2f} | "
        f"{statistics.fmean(gains):+.2f} ± {statistics.stdev(gains):.2f} | | |"
    )
    lines += ["", verdict_line(verdict)]
    return "\n".join(lines)


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
            _provenance(result.get("meta")),
            "",
            sizes_markdown(result).rstrip(),
        ]
    )


def render(results: Results, figures: Path, rel: str) -> dict[str, str]:
    """Section name -> markdown; figures are written into ``figures`` (linked as ``rel``)."""
    figures.mkdir(parents=True, exist_ok=True)
    sections: dict[str, str] = {}
    series = _series(results.sweeps)
    ordered = [n for n in PAPER_FIGURES if n in series] + [
        n for n in series if n not in PAPER_FIGURES
    ]
    for name in ordered:
        records = series[name]
        figure = None
        if name in ("squeeze_ratio", "pct_3x3"):
            figure = _plot_series(name, records, figures / f"sweep_{name}.png")
        sections[f"sweep-{name}"] = _sweep_section(name, records, figure, rel)
    for index, (_, result) in enumerate(results.sensitivity):
        suffix = "" if index == 0 else f"-{index + 1}"
        figure = plot_sensitivity(result, figures / f"sensitivity{suffix}.png")
        sections[f"sensitivity{suffix}"] = _sensitivity_section(result, figure, rel)
    for index, (_, document) in enumerate(results.dsd):
        sections[f"dsd{'' if index == 0 else f'-{index + 1}'}"] = _dsd_section(document)
    for index, group in enumerate(_dsd_seed_groups([d for _, d in results.dsd])):
        sections[f"dsd-seeds{'' if index == 0 else f'-{index + 1}'}"] = _dsd_seeds_section(group)
    for index, (_, sizes) in enumerate(results.sizes):
        sections[f"sizes{'' if index == 0 else f'-{index + 1}'}"] = _sizes_section(sizes)
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
