"""`squeezenet export`: ONNX (float32, compact or int8) or TorchScript, checked against PyTorch."""

from __future__ import annotations

from typing import Annotated

import typer

from squeezenet.cli.app import emit_json, fail, out
from squeezenet.cli.arguments import load_model_arg_info, user_paths
from squeezenet.cli.options import Calib, Json, ModelOrName, output_option

Format = Annotated[str, typer.Option("--format", "-f", help="onnx | torchscript.")]
ExportOut = Annotated[str, output_option("File to write (.onnx, .pt).")]
InputSize = Annotated[int | None, typer.Option(min=1, help="Square input size for the check.")]
Int8Format = Annotated[
    str,
    typer.Option(
        "--int8-format",
        help="Integer types of --int8 (docs/RESULTS.md): u8s7 (7-bit weights, exact on every "
        "x86 CPU, fast), u8u8 (uint8 weights: exact everywhere, slower, 0.003 nats closer), u8s8 "
        "(exact only with VNNI/AMX), s8s8.",
    ),
]


def export_cmd(
    model: ModelOrName,
    output: ExportOut,
    fmt: Format = "onnx",
    input_size: InputSize = None,
    compact: Annotated[
        bool, typer.Option("--compact", help="ONNX from a .sqz: codebook indices + Gather.")
    ] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="int8 ONNX (QDQ, per-channel), calibrated on --calib.")
    ] = False,
    calib: Calib = None,
    int8_format: Int8Format = "u8s7",
    as_json: Json = False,
) -> None:
    """Export to ONNX or TorchScript; outputs are checked against PyTorch (max |diff| <= 1e-4;
    --compact: <= 1e-5 against the .sqz decode; --int8: top-1 agreement >= 0.5). An ONNX file
    carries the model's metadata and a self-check that eval, predict and bench repeat where
    they run it (docs/ONNX.md)."""
    from squeezenet.deploy.export import FORMATS, export_model

    if fmt not in FORMATS:
        fail(f"--format must be {' or '.join(FORMATS)}, got {fmt!r}")
    if (compact or int8) and fmt != "onnx":
        fail("--compact and --int8 write ONNX: use --format onnx")
    if compact and int8:
        fail("choose one of --compact and --int8")
    if compact:
        _export_compact(model, output, as_json)
        return
    if int8:
        _export_int8(model, output, calib, int8_format, as_json)
        return
    with user_paths(reads=[model], writes=[output]):
        network, shape, name, _, info = load_model_arg_info(model)
        if input_size is not None:
            shape = (shape[0], input_size, input_size)
        report = export_model(network, output, fmt, shape, info=info)
    if as_json:
        emit_json(
            {
                "path": str(report.path),
                "format": fmt,
                "model": name,
                "bytes": report.bytes,
                "input_shape": list(report.input_shape),
                "max_abs_diff": report.max_abs_diff,
                "tolerance": report.tolerance,
            }
        )
        return
    out.print(
        f"wrote {report.path} ({report.bytes:,} bytes, {fmt}); parity on a "
        f"{tuple(report.input_shape)} batch: max |diff| {report.max_abs_diff:.2e} "
        f"(<= {report.tolerance:g})",
        highlight=False,
    )


def _export_compact(model: str, output: str, as_json: bool) -> None:
    from squeezenet.deploy.compact import export_compact

    if not model.endswith(".sqz"):
        fail(f"--compact exports a .sqz file (its codebooks), got {model!r}")
    with user_paths(reads=[model], writes=[output]):
        report = export_compact(model, output)
    if as_json:
        emit_json(report.to_dict())
        return
    diffs = ", ".join(f"{k} {v:.1e}" for k, v in report.max_abs_diff.items())
    out.print(
        f"wrote {report.path} ({report.bytes:,} bytes; dense export {report.dense_bytes:,}); "
        f"max |diff| against the .sqz decode: {diffs}",
        highlight=False,
    )


def _export_int8(
    model: str, output: str, calib: str | None, format_name: str, as_json: bool
) -> None:
    from squeezenet.deploy.int8 import Int8Config, export_int8, int8_format
    from squeezenet.deploy.int8_calibration import calibration_batches, model_preprocess

    if calib is None:
        fail("--int8 needs --calib DATA: proxy images for the activation ranges (not eval images)")
    with user_paths(reads=[model, calib], writes=[output]):
        config = Int8Config(format=int8_format(format_name))
        network, _, name, preprocess, info = load_model_arg_info(model)
        batches = calibration_batches(calib, model_preprocess(name, preprocess))
        report = export_int8(network, output, batches, info=info, config=config)
    if as_json:
        emit_json({**report, "model": name, "calib": calib})
        return
    out.print(
        f"wrote {report['path']} ({report['bytes']:,} bytes, int8 QDQ, {format_name}); top-1 "
        f"agreement with float32 on {report['images']} calibration images: "
        f"{report['agreement']:.3f} (>= {report['threshold']}); self-check on this CPU: KL "
        f"{report['check']['kl_exact']:.1e} from the file's arithmetic "
        f"(<= {report['check']['tolerance']:g})",
        highlight=False,
    )
