"""The DSD sections of the report: each run's phases against its equal-epoch dense baseline
(``dsd.json``), and one summary with a verdict over runs that differ only in their seed."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from squeezenet.experiments.dsd import DSD_JSON
from squeezenet.experiments.report import (
    ReportSection,
    provenance_text,
    read_json,
    verdict_line,
)
from squeezenet.experiments.verdicts import gain_verdict


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
        provenance_text(document.get("meta")),
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


def render_dsd(
    found: Sequence[tuple[Path, dict[str, Any]]], figures: Path, rel: str
) -> dict[str, str]:
    """``dsd``, ``dsd-2``, ... per run, then ``dsd-seeds``, ... per group of seeds."""
    sections: dict[str, str] = {}
    for index, (_, document) in enumerate(found):
        sections[f"dsd{'' if index == 0 else f'-{index + 1}'}"] = _dsd_section(document)
    for index, group in enumerate(_dsd_seed_groups([d for _, d in found])):
        sections[f"dsd-seeds{'' if index == 0 else f'-{index + 1}'}"] = _dsd_seeds_section(group)
    return sections


SECTION = ReportSection("dsd", DSD_JSON, 30, lambda folder: read_json(folder, DSD_JSON), render_dsd)
