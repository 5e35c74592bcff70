"""The train -> prune -> quantize -> .sqz pipeline: end to end on synthetic data (quick mode,
a tiny SqueezeNet), the decode check, the output folder, resume, and the CLI's --json."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from squeezenet.cli import main
from squeezenet.compress.weight_sharing import weight_share_of
from squeezenet.experiments import (
    DEFAULT_POLICY,
    STAGES,
    DecodeMismatchError,
    PipelineConfig,
    PipelineEvent,
    PipelineReport,
    PipelineResumeError,
    run_pipeline,
)
from squeezenet.experiments.pipeline import nchw_logits
from squeezenet.formats.policy import PrunePolicy
from squeezenet.formats.sqz import read_sqz
from squeezenet.workflows.load import load_any

TINY = {"base_e": 16, "incr_e": 16}  # a squeezenet_small of ~20k parameters
CONFIG = PipelineConfig.quick(
    data="synthetic",
    overrides=TINY,
    batch_size=32,
    dense_epochs=4.0,
    dense_lr=0.1,
    prune_epochs=1.0,
    quantize_epochs=0.5,
    check_images=32,
)


@dataclasses.dataclass
class Run:
    out: Path
    report: PipelineReport
    events: list[PipelineEvent]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("pipeline") / "out"
    events: list[PipelineEvent] = []
    report = run_pipeline(CONFIG, out, callback=events.append)
    return Run(out, report, events)


def _copy(run: Run, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run.out, tmp_path / "copy"))


def test_every_stage_reports_accuracy_and_a_shrinking_size(run: Run) -> None:
    rows = run.report.rows
    assert [row.stage for row in rows] == list(STAGES)
    assert not any(row.skipped for row in rows)
    assert rows[0].bytes > rows[1].bytes > rows[2].bytes  # dense > pruned > quantized
    assert rows[-1].bytes == (run.out / "model.sqz").stat().st_size
    assert rows[0].top1 > 0.3  # it learned (10 classes)
    assert rows[1].top1_before is not None and rows[2].top1_before is not None
    # the decoded file's logits equal the fine-tuned model's, so its accuracy is the same
    assert rows[-1].top1 == rows[2].top1


def test_decoded_sqz_reproduces_the_fine_tuned_logits(run: Run) -> None:
    assert run.report.check_max_abs_diff == 0.0
    assert run.report.check_images == 32
    check = load_file(str(run.out / "check.safetensors"))
    decoded = load_any(run.out / "model.sqz").model
    assert torch.equal(nchw_logits(decoded, check["inputs"]), check["logits"])
    fine_tuned = load_any(run.out / "quantized.safetensors").model
    assert torch.equal(nchw_logits(fine_tuned, check["inputs"]), check["logits"])


def test_the_file_holds_the_policy_and_the_bits(run: Run) -> None:
    compressed = read_sqz(run.out / "model.sqz")
    layers = {layer.name: layer for layer in compressed.layers}
    assert {layer.bits for layer in compressed.layers} == {6}
    expand3x3 = [layer for name, layer in layers.items() if name.endswith("expand3x3")]
    assert expand3x3 and all(abs(layer.density - 0.2) < 0.01 for layer in expand3x3)
    assert layers["features.0"].density == 1.0  # conv1 stays dense
    assert compressed.config == TINY  # the overrides (in_channels 3 is the default)
    assert compressed.preprocess is not None and compressed.class_names is not None


def test_the_output_folder_holds_everything(run: Run) -> None:
    for name in (
        "pipeline.json",
        "dense.safetensors",
        "pruned.safetensors",
        "quantized.safetensors",
        "check.safetensors",
        "model.sqz",
        "report.json",
    ):
        assert (run.out / name).is_file(), name
    assert (run.out / "accuracy_vs_size.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for folder in ("1-dense", "2-prune", "3-quantize"):
        assert json.loads((run.out / folder / "stage.json").read_text())["steps"] > 0
        assert (run.out / folder / "metrics.jsonl").is_file()
    assert (run.out / "4-encode" / "stage.json").is_file()
    assert json.loads((run.out / "pipeline.json").read_text()) == CONFIG.to_dict()
    report = json.loads((run.out / "report.json").read_text())
    assert report == json.loads(json.dumps(run.report.to_dict()))
    pruned = load_any(run.out / "pruned.safetensors").model
    assert not any(weight_share_of(m) for m in pruned.modules())  # plain weights with zeros


def test_progress_events_cover_every_stage_in_order(run: Run) -> None:
    starts = [e.stage for e in run.events if e.kind == "stage"]
    assert starts == list(STAGES)
    assert [e.stage for e in run.events if e.kind == "done"] == list(STAGES)
    fits = {e.stage for e in run.events if e.kind == "fit"}
    assert fits == {"dense", "prune", "quantize"}
    evals = [e for e in run.events if e.kind == "eval" and e.stage == "encode"]
    assert evals[-1].done == evals[-1].total == 128


def test_a_rerun_skips_finished_stages(run: Run, tmp_path: Path) -> None:
    out = _copy(run, tmp_path)
    sqz = (out / "model.sqz").read_bytes()
    events: list[PipelineEvent] = []
    report = run_pipeline(CONFIG, out, callback=events.append)
    assert [e.kind for e in events] == ["skip"] * 4
    assert all(row.skipped for row in report.rows)
    assert [row.top1 for row in report.rows] == [row.top1 for row in run.report.rows]
    assert (out / "model.sqz").read_bytes() == sqz


def test_a_half_finished_stage_resumes_from_its_checkpoint(run: Run, tmp_path: Path) -> None:
    out = _copy(run, tmp_path)
    for name in ("3-quantize/stage.json", "4-encode/stage.json", "model.sqz", "report.json"):
        (out / name).unlink()
    events: list[PipelineEvent] = []
    report = run_pipeline(CONFIG, out, callback=events.append)
    kinds = {e.stage: e.kind for e in events if e.kind in ("skip", "stage")}
    assert kinds == {"dense": "skip", "prune": "skip", "quantize": "stage", "encode": "stage"}
    record = json.loads((out / "3-quantize" / "stage.json").read_text())
    assert record["resumed"] is True  # fit found the finished checkpoint: nothing retrained
    assert (out / "model.sqz").read_bytes() == (run.out / "model.sqz").read_bytes()
    assert report.rows[-1].top1 == run.report.rows[-1].top1


def test_a_finished_stage_rerun_invalidates_the_later_ones(run: Run, tmp_path: Path) -> None:
    out = _copy(run, tmp_path)
    (out / "pruned.safetensors").unlink()  # stage 2's file is gone: 2, 3 and 4 run again
    events: list[PipelineEvent] = []
    run_pipeline(CONFIG, out, callback=events.append)
    assert [e.stage for e in events if e.kind == "stage"] == ["prune", "quantize", "encode"]
    assert not any(e.kind == "skip" and e.stage != "dense" for e in events)


def test_a_decoded_model_that_differs_fails_loudly(run: Run, tmp_path: Path) -> None:
    out = _copy(run, tmp_path)
    check = load_file(str(out / "check.safetensors"))
    check["logits"] = check["logits"] + 1e-3
    save_file(check, str(out / "check.safetensors"))
    (out / "4-encode" / "stage.json").unlink()
    with pytest.raises(DecodeMismatchError, match="differs from the fine-tuned model"):
        run_pipeline(CONFIG, out)


def test_another_config_in_the_same_folder_is_refused(run: Run, tmp_path: Path) -> None:
    out = _copy(run, tmp_path)
    with pytest.raises(PipelineResumeError, match="prune_epochs"):
        run_pipeline(dataclasses.replace(CONFIG, prune_epochs=2.0), out)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dense_epochs": 0}, "dense_epochs"),
        ({"quantize_lr": -1.0}, "quantize_lr"),
        ({"bits": 17}, "bits"),
        ({"bits": (("*", 0),)}, "bits"),
        ({"policy": "paper"}, "policy"),
        ({"train_images": -1}, "train_images"),
        ({"check_images": 0}, "check_images"),
        ({"tolerance": -1.0}, "tolerance"),
    ],
)
def test_config_errors_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"PipelineConfig.{field}"):
        PipelineConfig(**changes)  # type: ignore[arg-type]


def test_the_default_budget_and_policy() -> None:
    config = PipelineConfig()
    assert config.data == "fashion-mnist" and config.bits == 6 and config.policy == DEFAULT_POLICY
    assert config.dense_epochs + config.prune_epochs + config.quantize_epochs <= 3.0
    assert PipelineConfig.quick().train_images <= 5000
    assert DEFAULT_POLICY.amount_for(("fire4.expand3x3",)) == 0.8
    assert DEFAULT_POLICY.amount_for(("conv1",)) is None
    assert isinstance(DEFAULT_POLICY, PrunePolicy)


def test_cli_quick_pipeline_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["pipeline", "--quick", "--data", "synthetic", "--out", str(tmp_path / "cli")]
    argv += ["--set", "base_e=16", "--set", "incr_e=16", "--batch-size", "32", "--epochs", "2,1,1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--json"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    document = json.loads(captured.out)  # exactly one JSON document
    assert [row["stage"] for row in document["stages"]] == list(STAGES)
    assert document["check"]["max_abs_diff"] == 0.0
    assert document["file_bytes"] == (tmp_path / "cli" / "model.sqz").stat().st_size
    assert document["ratio_alexnet"] == pytest.approx(244_403_360 / document["file_bytes"])
    assert "[4/4] encode" in captured.err  # progress goes to stderr
    with pytest.raises(SystemExit) as exit_info:  # a rerun resumes: every stage skipped
        main(argv)
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    assert "vs AlexNet" in captured.out and "finished earlier" in captured.err
    with pytest.raises(SystemExit) as exit_info:
        main([*argv[:-2], "--epochs", "3"])
    assert exit_info.value.code == 2
    assert "--restart" in capsys.readouterr().err
