"""`squeezenet report`: sections regenerated in place from result folders, figures written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import run
from squeezenet.arch.preprocess import CIFAR10
from squeezenet.data.sources import load_dataset
from squeezenet.errors import MissingFileError
from squeezenet.experiments.provenance import command_line
from squeezenet.experiments.report import (
    load_results,
    report_sections,
    update_markdown,
    write_report,
)
from squeezenet.experiments.sensitivity import sensitivity
from squeezenet.experiments.sensitivity_report import sensitivity_findings
from squeezenet.experiments.sensitivity_result import SensitivityConfig
from squeezenet.experiments.sweep import Trial, parse_grid, run_sweep, trials_for
from squeezenet.models import create_model
from squeezenet.train.config import recipe

META = {
    "command": "squeezenet sweep ...",
    "machine": {"device": "cpu", "cpu_count": 2, "torch_threads": 2, "torch": "2.14.1"},
}


def _record(trial: Trial) -> dict[str, Any]:
    value = dict(trial.overrides)
    ratio = float(value.get("squeeze_ratio", 0.125))
    return {
        "key": trial.key,
        "trial": trial.to_dict(),
        "label": trial.label,
        "params": int(1e6 * ratio),
        "size_bytes": int(4e6 * ratio),
        "top1": 0.5 + ratio / 4,
        "top5": 0.9,
        "seconds": 10.0,
        "test_images": 100,
    }


@pytest.fixture
def folders(tmp_path: Path) -> list[Path]:
    train = recipe("small", epochs=1)
    sweep = tmp_path / "sweep"
    for grid in (
        ["squeeze_ratio=0.125,0.5,1.0"],
        ["pct_3x3=0.25,0.5", "squeeze_ratio=0.5"],
        ["bypass=none,simple,complex"],
    ):
        trials = trials_for(
            parse_grid(grid),
            model="squeezenet_small",
            data="cifar10",
            train=train,
            train_images=1000,
        )
        run_sweep(trials, sweep, runner=_record, meta=META)
    model = create_model("squeezenet_small", num_classes=10, seed=0).eval()
    data = load_dataset("synthetic", "test", synthetic_size=64)
    result = sensitivity(
        model,
        data,
        CIFAR10,
        SensitivityConfig(sparsities=(0.5, 0.9), bits=(4,), layers="fire2.*,conv10"),
    )
    (tmp_path / "sens").mkdir()
    (tmp_path / "sens" / "sensitivity.json").write_text(json.dumps(result.to_dict()))
    dsd = {
        "config": {
            "model": "squeezenet_small",
            "data": "cifar10",
            "policy": "0.5",
            "dense_epochs": 2,
            "sparse_epochs": 1,
            "redense_epochs": 1,
            "redense_lr_scale": 0.1,
            "train_images": 0,
            "train": train.to_dict(),
        },
        "phases": {
            p: {"epochs": 1, "lr": 0.05, "sparsity": 0.0, "top1": 0.6, "top5": 0.9}
            for p in ("dense", "sparse", "redense", "baseline_sparse", "baseline_redense")
        },
        "summary": {"total_epochs": 4, "dsd_top1": 0.61, "baseline_top1": 0.6, "gain_points": 1.0},
    }
    (tmp_path / "dsd").mkdir()
    (tmp_path / "dsd" / "dsd.json").write_text(json.dumps(dsd))
    return [sweep, tmp_path / "sens", tmp_path / "dsd"]


def test_report_writes_sections_and_figures_and_is_idempotent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, folders: list[Path]
) -> None:
    results = tmp_path / "docs" / "RESULTS.md"
    results.parent.mkdir()
    results.write_text("# Results\n\nHand-written text stays.\n")
    argv = ["report", *folders, "-o", results, "--figures", tmp_path / "docs" / "fig"]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0, stdout
    text = results.read_text()
    assert "Hand-written text stays." in text
    for name in ("sweep-squeeze_ratio", "sweep-pct_3x3", "sweep-bypass", "sensitivity", "dsd"):
        assert text.count(f"<!-- report:{name} -->") == 1, name
    assert "Fig. 3a" in text and "Fig. 3b" in text and "Table 3" in text and "Fig. 6a" in text
    assert "squeezenet sweep ..." in text and "2 CPU cores" in text  # command and machine
    assert "(fig/sweep_squeeze_ratio.png)" in text
    for png in ("sweep_squeeze_ratio.png", "sweep_pct_3x3.png", "sensitivity.png"):
        assert (tmp_path / "docs" / "fig" / png).stat().st_size > 1000
    # the SR = 0.5 / pct = 0.5 point belongs to both Fig. 3 series
    sr = text.split("<!-- report:sweep-squeeze_ratio -->")[1].split("<!-- /report")[0]
    assert sr.count("\n| 0.") + sr.count("\n| 1.") == 3
    code, _, _ = run(capsys, *argv)
    assert code == 0 and results.read_text() == text  # a rerun changes nothing


def test_update_markdown_replaces_only_its_block() -> None:
    text = "a\n<!-- report:x -->\nold\n<!-- /report:x -->\nb\n"
    assert (
        update_markdown(text, {"x": "new"}) == "a\n<!-- report:x -->\nnew\n<!-- /report:x -->\nb\n"
    )
    appended = update_markdown("a\n", {"y": "body"})
    assert appended.endswith("<!-- report:y -->\nbody\n<!-- /report:y -->\n")


def test_each_experiment_module_brings_its_own_section() -> None:
    """A report section is one ``experiments/*_report.py`` module defining ``SECTION``."""
    sections = report_sections()
    assert [s.name for s in sections] == ["sweep", "sensitivity", "dsd", "sizes"]
    assert [s.file for s in sections] == [
        "results.jsonl", "sensitivity.json", "dsd.json", "sizes.json"
    ]  # fmt: skip


def test_findings_compare_one_by_one_and_three_by_three(folders: list[Path]) -> None:
    result = load_results([folders[1]])["sensitivity"][0][1]
    findings = sensitivity_findings(result)
    assert [row["sparsity"] for row in findings["by_sparsity"]] == [0.5, 0.9]
    assert findings["by_sparsity"][0]["layers_3x3"] == 1  # fire2.expand3x3
    assert findings["by_sparsity"][0]["layers_1x1"] == 3  # squeeze, expand1x1, conv10
    assert isinstance(findings["one_by_one_more_sensitive"], bool)
    assert len(findings["at_max"]) == 3


def test_report_rejects_a_folder_without_results(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, stderr = run(capsys, "report", tmp_path, "--results", tmp_path / "R.md")
    assert code == 2 and "holds no results" in stderr


def test_write_report_needs_the_folder_of_the_document(folders: list[Path], tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="does not exist"):
        write_report(folders, tmp_path / "nowhere" / "R.md", tmp_path / "fig")
    with pytest.raises(MissingFileError, match="result folder not found"):
        write_report([tmp_path / "missing"], tmp_path / "R.md", tmp_path / "fig")


def test_the_command_line_is_given_by_the_entry_point() -> None:
    argv = ["/venv/bin/squeezenet", "sweep", "--grid", "bypass=none,simple", "-o", "a b"]
    assert command_line(argv) == "squeezenet sweep --grid bypass=none,simple -o 'a b'"
    assert command_line(["bench.py", "--out", "x"]) == "python bench.py --out x"


def test_each_sweep_section_lists_exactly_the_commands_of_its_rows(tmp_path: Path) -> None:
    """Two sweeps into one folder share a point (the second reuses it): each section names the
    commands whose records it shows, and which rows each produced."""
    train = recipe("small", epochs=1)
    sweep = tmp_path / "sweep"
    runs = (
        (["squeeze_ratio=0.125,0.5"], {"bypass": "none"}, "squeezenet sweep --grid SR"),
        (["bypass=none,simple,complex"], {"squeeze_ratio": 0.125}, "squeezenet sweep --grid BP"),
    )
    for grid, fixed, command in runs:
        trials = trials_for(
            parse_grid(grid), model="squeezenet_small", data="cifar10", train=train, fixed=fixed
        )
        run_sweep(trials, sweep, runner=_record, meta={**META, "command": command})
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    write_report([sweep], results, tmp_path / "fig")
    text = results.read_text()
    sr = text.split("<!-- report:sweep-squeeze_ratio -->")[1].split("<!-- /report")[0]
    bp = text.split("<!-- report:sweep-bypass -->")[1].split("<!-- /report")[0]
    assert "--grid SR" in sr and "--grid BP" not in sr and "Rows" not in sr
    assert "Rows bypass = none (seed 0): command: `squeezenet sweep --grid SR`" in bp
    assert (
        "Rows bypass = simple (seed 0), complex (seed 0): command: `squeezenet sweep --grid BP`"
        in bp
    )


def test_a_sweep_with_seeds_reports_mean_std_seeds_and_a_verdict(tmp_path: Path) -> None:
    def record(trial: Trial) -> dict[str, Any]:
        out = _record(trial)
        out["top1"] += 0.002 * trial.train.seed  # seeds differ a little
        return out

    trials = trials_for(
        parse_grid(["squeeze_ratio=0.125,0.5,0.75,1.0"]),
        model="squeezenet_small",
        data="cifar10",
        train=recipe("small", epochs=1),
        seeds=(0, 1),
    )
    assert len(trials) == 8 and {t.train.seed for t in trials} == {0, 1}
    run_sweep(trials, tmp_path / "sweep", runner=record, meta=META)
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    write_report([tmp_path / "sweep"], results, tmp_path / "fig")
    section = results.read_text().split("<!-- report:sweep-squeeze_ratio -->")[1]
    assert "| 0.5 | 500,000 | 1.91 | 0, 1 | 0.6250, 0.6270 | 0.6260 ± 0.0014 |" in section
    assert "2 seed(s) per point" in section
    assert "LR 0.05 cosine, bfloat16;" in section  # the precision is part of the budget
    assert "**Verdict: does not hold.**" in section  # 0.125 -> 1.0 keeps rising here


def test_sweep_takes_seeds_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "sweep", "--grid", "squeeze_ratio=0.5", "--data", "synthetic",
                         "-o", tmp_path / "s", "--epochs", "1", "--seeds", "0,x", "-q")  # fmt: skip
    assert code == 2 and not out and "--seeds expects integers" in err
    assert len(err.strip().splitlines()) == 1


def test_dsd_runs_over_seeds_get_one_summary_with_a_verdict(
    folders: list[Path], tmp_path: Path
) -> None:
    document = json.loads((folders[2] / "dsd.json").read_text())
    runs = []
    for seed, gain in ((0, 1.0), (1, 1.4), (2, 1.2)):
        run_doc = json.loads(json.dumps(document))
        run_doc["config"]["train"]["seed"] = seed
        run_doc["summary"]["gain_points"] = gain
        run_doc["summary"]["dsd_top1"] = 0.6 + gain / 100
        if seed == 1:  # a run that paired its two final models on the test images
            run_doc["summary"]["paired"] = {"images": 10000, "top1_diff": 0.014,
                                            "top1_diff_se": 0.0031, "only_dsd": 400,
                                            "only_baseline": 260, "agreement": 0.93}  # fmt: skip
        folder = tmp_path / f"dsd{seed}"
        folder.mkdir()
        (folder / "dsd.json").write_text(json.dumps(run_doc))
        runs.append(folder)
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    write_report(runs, results, tmp_path / "fig")
    section = results.read_text().split("<!-- report:dsd-seeds -->")[1].split("<!-- /report")[0]
    assert "| 1 | 60.00 | 61.40 | 60.00 | +1.40 | 0.31 | 0.930 |" in section
    assert "| 0 | 60.00 | 61.00 | 60.00 | +1.00 | — | — |" in section
    assert "| mean ± std | | 61.20 ± 0.20 | 60.00 ± 0.00 | +1.20 ± 0.20 | | |" in section
    assert (
        "**+1.40 points** top-1 (paper, ImageNet: +4.3); paired standard error 0.31 points on "
        "10,000 images (400 right only with DSD, 260 only with the baseline), top-1 agreement "
        "0.930." in results.read_text()
    )
    assert "**Verdict: holds.**" in section and "over 3 seeds" in section
