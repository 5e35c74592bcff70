"""CLI contract: stdout results, one JSON document with --json, one-line errors with exit 2."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cli_helpers import run
from squeezenet.cli import app, main
from squeezenet.data import CIFAR10
from squeezenet.io.weights import save_weights
from squeezenet.models import create_model


@pytest.mark.parametrize(
    ("name", "params"), [("squeezenet1_0", 1_248_424), ("squeezenet1_1", 1_235_496)]
)
def test_summary_json(capsys: pytest.CaptureFixture[str], name: str, params: int) -> None:
    code, out, err = run(capsys, "summary", name, "--json")
    assert code == 0
    document = json.loads(out)
    assert document["params"] == params
    assert document["size_bytes"] == 4 * params
    assert {"name", "out_shape", "params", "macs"} <= set(document["layers"][0])
    assert sum(layer["params"] for layer in document["layers"]) == params
    assert err == ""


def test_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "squeezenet1_0")
    assert code == 0
    assert "fire9" in out and "1,248,424" in out and "818.9 M" in out


def test_summary_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "squeezenet1_0", "--squeeze-ratio", "0.75", "--json")
    assert code == 0 and json.loads(out)["params"] == 4_841_704


def test_sweep_lists_fig3_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "--sweep", "--json")
    assert code == 0
    points = json.loads(out)
    assert [p["value"] for p in points if p["axis"] == "squeeze_ratio"] == [
        0.125,
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    assert [p["value"] for p in points if p["axis"] == "pct_3x3"] == [
        0.01,
        0.125,
        0.25,
        0.5,
        0.75,
        0.99,
    ]
    by_sr = {p["value"]: p for p in points if p["axis"] == "squeeze_ratio"}
    assert by_sr[0.125]["size_bytes"] == 4 * 1_248_424
    assert by_sr[0.75]["size_mib"] == pytest.approx(19.0, rel=0.05)  # paper: ~19 MB
    assert by_sr[1.0]["size_mib"] == pytest.approx(24.0, rel=0.05)  # paper: ~24 MB


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["summary", "no_such_model"], "known models: alexnet"),
        (["summary", "squeezenet1_0", "--pct-3x3", "2"], "pct_3x3"),
        (["summary", "squeezenet1_0", "--input-size", "20"], "--input-size"),
        (["summary", "--no-such-flag"], "No such option"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and needle in err
    assert "Traceback" not in err


def test_console_script_has_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "squeezenet", "summary", "no_such_model"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown model 'no_such_model'")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "squeezenet_small", "--data", "no-such-dataset"], "unknown dataset"),
        (
            ["train", "squeezenet_small", "--data", "fashion-mnist", "--data-dir", "/nonexistent"],
            "apt-get install -y dataset-fashion-mnist",
        ),
        (["train", "--resume", "/nonexistent-run"], "not a run folder"),
        (["train", "--resume", "/r", "--recipe", "caffe"], "--resume continues a run"),
        (["train", "--resume", "/r", "--no-channels-last"], "--resume continues a run"),
        (["train", "--resume", "/r", "--no-bf16"], "--resume continues a run"),
        (["eval", "/nonexistent.safetensors", "--data", "synthetic"], "weights file not found"),
    ],
)
def test_train_and_eval_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and needle in err, err


def test_train_then_eval_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code, out, _ = run(
        capsys,
        "train",
        "squeezenet_small",
        "--data",
        "synthetic",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--set",
        "base_e=16",
        "--set",
        "incr_e=16",
        "-o",
        str(run_dir),
        "--quiet",
        "--json",
    )
    assert code == 0 and json.loads(out)["epoch"] == 1
    code, out, _ = run(
        capsys,
        "eval",
        str(run_dir / "model.safetensors"),
        "--data",
        "synthetic",
        "--json",
        "--quiet",
    )
    document = json.loads(out)
    assert code == 0 and {"top1", "top5", "n"} <= set(document) and document["n"] == 128


@pytest.mark.parametrize(
    ("flags", "bf16"), [([], None), (["--no-bf16"], False), (["--bf16"], True)]
)
def test_train_bf16_is_the_small_recipes_default(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], bf16: bool | None
) -> None:
    """bf16 autocast comes from the recipe where the CPU has bfloat16 units, unless
    --bf16/--no-bf16 is given; run.json keeps what was used."""
    from squeezenet.train.config import native_bf16
    from squeezenet.workflows.train_run import read_run_spec

    bf16 = native_bf16("cpu") if bf16 is None else bf16

    base = ["train", "squeezenet_small", "--data", "synthetic", "--max-steps", "1", "-q"]
    tiny = ["--set", "base_e=16", "--set", "incr_e=16", "-o", str(tmp_path / "run")]
    code, _, _ = run(capsys, *base, *tiny, *flags)
    assert code == 0 and read_run_spec(tmp_path / "run").train.bf16 is bf16


def test_a_bug_keeps_its_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only squeezenet.errors.UserError is a user error: a plain exception propagates."""
    import squeezenet.models.summary as summary

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(summary, "summarize_registered", broken)
    with pytest.raises(RuntimeError, match="an internal bug"):
        main(["summary", "squeezenet1_0"])
    assert "error:" not in capsys.readouterr().err


def test_console_script_shows_a_bug_with_its_traceback_and_exit_1() -> None:
    script = (
        "import squeezenet.models.summary as summary\n"
        "def broken(*args, **kwargs):\n"
        "    raise ValueError('an internal bug')\n"
        "summary.summarize_registered = broken\n"
        "from squeezenet.cli import main\n"
        "main(['summary', 'squeezenet1_0'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ValueError: an internal bug" in result.stderr
    assert not result.stderr.startswith("error:")


def _commands() -> dict[str, object]:
    import typer

    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def test_every_output_option_is_spelled_o_output() -> None:
    commands = _commands()
    writers = set()
    for name, command in commands.items():
        for param in command.params:  # type: ignore[attr-defined]
            opts = [*param.opts, *param.secondary_opts]
            assert "--out" not in opts, name
            if "--output" in opts:
                assert "-o" in opts, name
                writers.add(name)
    mine = {"import-caffe-dc", "compress", "decompress", "export", "train", "pipeline"}
    assert mine <= writers


@pytest.mark.parametrize("command", sorted(_commands()))
def test_help_shows_only_the_new_spelling(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert not re.search(r"--out\b(?!put)", out), out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny weights file and its .sqz, in a folder of their own."""
    folder = tmp_path_factory.mktemp("files")
    model = create_model("squeezenet_small", seed=0, base_e=16, incr_e=16)
    weights = save_weights(
        model, folder / "m.safetensors", model_name="squeezenet_small", preprocess=CIFAR10
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["compress", str(weights), "-o", str(folder / "m.sqz"), "--bits", "4"])
    assert exit_info.value.code == 0
    return {"w": weights, "sqz": folder / "m.sqz"}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["compress", "{w}", "-o", "{tmp}"], "cannot write {tmp}: Is a directory"),
        (["decompress", "{sqz}", "-o", "{tmp}"], "cannot write {tmp}: Is a directory"),
        (["decompress", "{sqz}", "-o", "{w}/x.safetensors"], "a file stands where a folder"),
        (["inspect", "{tmp}"], "cannot read {tmp}: Is a directory"),
        (["export", "{w}", "-o", "{tmp}"], "cannot write {tmp}: it is a folder"),
        (["export", "{w}", "-o", "{w}/x.onnx"], "cannot write {w}/x.onnx: {w} is a file"),
        (["export", "{tmp}/", "-o", "{tmp}/x.onnx"], "weights file not found"),
        (["predict", "{w}", "{tmp}"], "cannot decode image"),
        (["predict", "squeezenet_small", "{tmp}/x.png"], "predict needs a model file"),
        (["eval", "squeezenet_small", "--data", "synthetic"], "eval needs a model file"),
        (
            ["train", "squeezenet_small", "--data", "synthetic", "-o", "{w}", "-q"],
            "cannot write {w}: File exists; a file stands where a folder should be",
        ),
    ],
)
def test_os_errors_on_named_paths_are_one_line(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, Path],
    tmp_path: Path,
    argv: list[str],
    needle: str,
) -> None:
    names = {"tmp": str(tmp_path), **{k: str(v) for k, v in files.items()}}
    code, out, err = run(capsys, *(a.format(**names) for a in argv))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and needle.format(**names) in err, err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_permission_denied_on_read_is_one_line(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:  # root reads any file, so the OS cannot be asked to refuse
        if self == files["sqz"]:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    code, out, err = run(capsys, "inspect", files["sqz"])
    assert code == 2 and out == ""
    assert err == f"error: cannot read {files['sqz']}: Permission denied; check its permissions\n"


def test_permission_denied_on_write_is_one_line(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mkstemp = tempfile.mkstemp
    target = tmp_path / "o.sqz"

    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        if kwargs.get("dir") == target.parent:  # the atomic write's temporary file beside it
            path = str(target.parent / f".{target.name}.x.tmp")
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return mkstemp(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    code, out, err = run(capsys, "compress", files["w"], "-o", target)
    assert code == 2 and out == ""
    assert err == f"error: cannot write {target}: Permission denied; check its permissions\n"


def test_eval_against_a_teacher_prints_the_paired_comparison(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, out, _ = run(capsys, "eval", files["w"], "--data", "synthetic", "--against", files["w"])
    assert code == 0
    assert "top-1 agreement 1.0000" in out and "+0.0 ± 0.0 points" in out
    code, out, _ = run(
        capsys, "eval", files["sqz"], "--data", "synthetic", "--against", files["w"], "--json"
    )
    assert code == 0
    document = json.loads(out)
    assert set(document) >= {"top1", "teacher_top1", "top1_diff", "top1_diff_se", "agreement"}
    assert document["kl"] > 0 and 0 <= document["agreement"] <= 1
