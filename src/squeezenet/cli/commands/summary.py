"""`squeezenet summary`: the paper's Table 1 for any model or design point, and Fig. 3's sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import emit_json, fail, out
from squeezenet.cli.arguments import given
from squeezenet.cli.options import Json

if TYPE_CHECKING:
    from squeezenet.models.summary import DesignPoint, ModelSummary

Name = Annotated[str, typer.Argument(help="A registered model (see `squeezenet models`).")]
InputSize = Annotated[
    int | None, typer.Option(min=1, help="Square input size in pixels (default: the model's).")
]
Ratio = Annotated[float | None, typer.Option(help="SR = s1x1 / e (Sec. 5.1).")]
Pct3x3 = Annotated[float | None, typer.Option("--pct-3x3", help="Share of 3x3 expand filters.")]
BaseE = Annotated[int | None, typer.Option(help="Expand filters of fire2.")]
IncrE = Annotated[int | None, typer.Option(help="Expand filters added every FREQ modules.")]
Freq = Annotated[int | None, typer.Option(help="Fire modules per expand width.")]
Bypass = Annotated[str | None, typer.Option(help="none | simple | complex (Sec. 6).")]
Classes = Annotated[int | None, typer.Option(help="Number of classes.")]
Channels = Annotated[int | None, typer.Option(help="Input channels.")]
Padding = Annotated[int | None, typer.Option(help="conv10 padding (1 = Caffe).")]
Sweep = Annotated[bool, typer.Option("--sweep", help="Sizes of the Fig. 3 design space.")]


def summary_cmd(
    name: Name = "squeezenet1_0",
    input_size: InputSize = None,
    squeeze_ratio: Ratio = None,
    pct_3x3: Pct3x3 = None,
    base_e: BaseE = None,
    incr_e: IncrE = None,
    freq: Freq = None,
    bypass: Bypass = None,
    num_classes: Classes = None,
    in_channels: Channels = None,
    final_conv_padding: Padding = None,
    sweep: Sweep = False,
    as_json: Json = False,
) -> None:
    """Per-layer table in the layout of the paper's Table 1: shapes, filters, params, MACs."""
    from squeezenet.models.summary import summarize_registered

    overrides = given(
        squeeze_ratio=squeeze_ratio,
        pct_3x3=pct_3x3,
        base_e=base_e,
        incr_e=incr_e,
        freq=freq,
        bypass=bypass,
        num_classes=num_classes,
        in_channels=in_channels,
        final_conv_padding=final_conv_padding,
    )
    if sweep:
        _sweep(name, overrides, as_json)
        return
    summary = summarize_registered(name, input_size, **overrides)
    if as_json:
        emit_json(summary.to_dict())
        return
    out.print(_summary_table(name, summary))
    out.print(
        f"parameters {summary.params:,} | MACs {summary.macs / 1e6:,.1f} M | "
        f"size at 32 bits {summary.size_bytes:,} bytes ({summary.size_bytes / 2**20:.2f} MiB)",
        highlight=False,
    )


def _sweep(name: str, overrides: dict[str, Any], as_json: bool) -> None:
    """``summary --sweep``: the Fig. 3 design space around ``name``."""
    from squeezenet.models import SqueezeNetConfig, resolve_config
    from squeezenet.models.summary import design_space

    config = resolve_config(name, **overrides)
    if not isinstance(config, SqueezeNetConfig):
        fail(f"--sweep needs a SqueezeNet model, not {name}")
    points = design_space(config)
    if as_json:
        emit_json([_point_record(p) for p in points])
    else:
        out.print(_sweep_table(name, points))


def _point_record(p: DesignPoint) -> dict[str, Any]:
    return {
        "axis": p.axis,
        "value": p.value,
        "params": p.params,
        "size_bytes": p.size_bytes,
        "size_mib": round(p.size_mib, 3),
        "paper_mb": p.paper_mb,
    }


def _sweep_table(name: str, points: list[DesignPoint]) -> Table:
    table = Table(title=f"Fig. 3 design space around {name} (32-bit sizes)")
    for column in ("sweep", "value", "squeeze_ratio", "pct_3x3", "params", "MiB", "paper MB"):
        table.add_column(column, justify="left" if column == "sweep" else "right")
    for p in points:
        table.add_row(
            p.axis,
            f"{p.value:g}",
            f"{p.config.squeeze_ratio:g}",
            f"{p.config.pct_3x3:g}",
            f"{p.params:,}",
            f"{p.size_mib:.2f}",
            f"{p.paper_mb:g}" if p.paper_mb else "—",
        )
    return table


def _summary_table(name: str, summary: ModelSummary) -> Table:
    c, h, w = summary.input_shape
    table = Table(title=f"{name}: input {c}x{h}x{w}")
    for column in ("layer", "output (C x H x W)", "s1x1", "e1x1", "e3x3", "params", "MACs"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for layer in summary.layers:
        filters = ("" if v is None else str(v) for v in (layer.s1x1, layer.e1x1, layer.e3x3))
        table.add_row(
            layer.name,
            " x ".join(map(str, layer.out_shape)),
            *filters,
            f"{layer.params:,}",
            f"{layer.macs:,}",
        )
    table.add_section()
    table.add_row("total", "", "", "", "", f"{summary.params:,}", f"{summary.macs:,}")
    return table
