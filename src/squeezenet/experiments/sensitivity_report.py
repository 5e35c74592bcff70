"""The per-layer sensitivity section of the report (Fig. 6a): the figure, the table of top-1
drops and the paper's findings checked on the stored sweep (``sensitivity.json``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from squeezenet.experiments.report import (
    ReportSection,
    provenance_text,
    pyplot,
    read_json,
    save_figure,
)
from squeezenet.experiments.sensitivity_result import SENSITIVITY_JSON, Kind, SensitivityResult


def plot_sensitivity(result: SensitivityResult, path: Any, *, title: str = "") -> Any:
    """Top-1 against sparsity (left) and against bit width (right), one line per layer, as in
    the paper's Fig. 6a. Returns the path written."""
    plt = pyplot()
    kinds = [
        k
        for k, values in (("prune", result.config.sparsities), ("bits", result.config.bits))
        if values
    ]
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.5 * len(kinds), 5.2), squeeze=False)
    names = [layer["name"] for layer in result.layers]
    cmap = plt.get_cmap("nipy_spectral")
    for ax, kind in zip(axes[0], kinds, strict=True):
        for i, name in enumerate(names):
            curve = result.curve(name, cast(Kind, kind))
            xs = [100 * p.value if kind == "prune" else p.value for p in curve]
            style = "-" if ("1x1" in name or "squeeze" in name) else "--"
            ax.plot(
                xs,
                [100 * p.top1 for p in curve],
                style,
                color=cmap(i / max(len(names), 1)),
                label=name,
                linewidth=1.2,
                marker=".",
                markersize=4,
            )
        ax.axhline(100 * result.baseline["top1"], color="grey", linewidth=0.8, linestyle=":")
        if kind == "prune":
            ax.set_xlabel("sparsity of the one pruned layer (%)")
        else:
            ax.set_xlabel("bits of the one quantized layer")
            ax.invert_xaxis()
        ax.set_ylabel("top-1 (%)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, ncol=2, loc="lower left")
    fig.suptitle(title or f"Per-layer sensitivity ({result.images} images; solid: 1x1 layers)")
    return save_figure(fig, path)


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
        provenance_text(meta),
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


def render_sensitivity(
    found: Sequence[tuple[Path, SensitivityResult]], figures: Path, rel: str
) -> dict[str, str]:
    """``sensitivity``, ``sensitivity-2``, ...: one section and figure per stored sweep."""
    sections: dict[str, str] = {}
    for index, (_, result) in enumerate(found):
        suffix = "" if index == 0 else f"-{index + 1}"
        figure = plot_sensitivity(result, figures / f"sensitivity{suffix}.png")
        sections[f"sensitivity{suffix}"] = _sensitivity_section(result, figure, rel)
    return sections


def _load(folder: Path) -> SensitivityResult:
    return SensitivityResult.from_dict(read_json(folder, SENSITIVITY_JSON))


SECTION = ReportSection("sensitivity", SENSITIVITY_JSON, 20, _load, render_sensitivity)
