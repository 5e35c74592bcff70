"""Per-layer sensitivity: probes restore the model exactly; planning respects its budget."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from cli_helpers import run
from squeezenet.arch.preprocess import CIFAR10
from squeezenet.compress.spellings import parse_policy, policy_bits
from squeezenet.data.sources import load_dataset
from squeezenet.errors import ConfigError, MissingFileError
from squeezenet.experiments.plan import Plan, calibrate_plan, loss_scale, plan_from_sensitivity
from squeezenet.experiments.sensitivity import sensitivity
from squeezenet.experiments.sensitivity_result import Probe, SensitivityConfig, SensitivityResult
from squeezenet.experiments.sensitivity_run import SensitivityJob, run_sensitivity
from squeezenet.io.weights import save_weights
from squeezenet.models import create_model
from squeezenet.train.evaluate import evaluate


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return create_model("squeezenet_small", num_classes=10, seed=0).eval()


@pytest.fixture(scope="module")
def data() -> object:
    return load_dataset("synthetic", "test", synthetic_size=256, seed=3)


CONFIG = SensitivityConfig(sparsities=(0.0, 0.5, 0.9), bits=(16, 4, 2), batch_size=16)


@dataclass
class Swept:
    """The module's one sweep, watched: after each probe and at the end, the names of the
    state tensors that differ from the model's before the sweep, and the final layout."""

    result: SensitivityResult
    changed_after_probe: list[list[str]]
    changed_at_the_end: list[str]
    contiguous_at_the_end: bool


def _changed(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> list[str]:
    state = model.state_dict()
    return [key for key, value in before.items() if not torch.equal(state[key], value)]


@pytest.fixture(scope="module")
def swept(tiny: torch.nn.Module, data: object) -> Swept:
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    changed: list[list[str]] = []
    result = sensitivity(
        tiny, data, CIFAR10, CONFIG, callback=lambda event: changed.append(_changed(tiny, before))
    )
    contiguous = all(p.is_contiguous() for p in tiny.parameters())
    return Swept(result, changed, _changed(tiny, before), contiguous)


@pytest.fixture(scope="module")
def result(swept: Swept) -> SensitivityResult:
    return swept.result


def test_every_probe_restores_the_model_bit_for_bit(swept: Swept) -> None:
    assert len(swept.changed_after_probe) == 26 * 6
    for changed in [*swept.changed_after_probe, swept.changed_at_the_end]:
        assert changed == []  # after each probe, the weights are the original ones
    assert swept.contiguous_at_the_end  # back in NCHW layout


def test_baseline_equals_a_full_evaluation(
    tiny: torch.nn.Module, data: object, result: SensitivityResult
) -> None:
    full = evaluate(tiny, data, CIFAR10, batch_size=16)  # type: ignore[arg-type]
    assert result.baseline["top1"] == pytest.approx(full.top1)
    assert result.baseline["loss"] == pytest.approx(full.loss, rel=1e-5)
    assert result.images == full.n == len(data)  # type: ignore[arg-type]


def test_probes_cover_every_layer_and_setting(result: SensitivityResult) -> None:
    assert len(result.layers) == 26 and result.layers[0]["name"] == "conv1"
    assert result.layers[-1]["name"] == "conv10"
    for layer in result.layers:
        prune = result.curve(layer["name"], "prune")
        bits = result.curve(layer["name"], "bits")
        assert [p.value for p in prune] == [0.0, 0.5, 0.9]
        assert [p.value for p in bits] == [16, 4, 2]
        # no pruning, and 16 bits on a layer of <= 2**16 weights, leave the weights as they
        # are: the baseline is reused
        assert not prune[0].changed and prune[0].top1 == result.baseline["top1"]
        assert bits[0].changed == (layer["distinct"] > 2**16)
        assert prune[2].changed and prune[2].sparsity == pytest.approx(0.9, abs=0.01)
        assert bits[2].changed


def test_pruning_a_layer_hard_costs_accuracy_somewhere(result: SensitivityResult) -> None:
    # the random-init model is no classifier, but its loss must move when layers are cut
    losses = {p.loss for p in result.probes if p.changed}
    assert len(losses) > 10


def test_result_round_trips_through_json_and_csv(result: SensitivityResult) -> None:
    again = SensitivityResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    lines = result.to_csv().splitlines()
    assert lines[0].startswith("layer,prefix,kind,value,top1")
    assert len(lines) == 1 + len(result.probes)


def test_plan_stays_within_budget_and_compress_reads_it(
    result: SensitivityResult, tmp_path: Path
) -> None:
    for budget in (0.0, 2.0, 50.0):
        plan = plan_from_sensitivity(result, budget)
        assert plan.predicted_drop <= budget + 1e-6
    tight, loose = plan_from_sensitivity(result, 0.0), plan_from_sensitivity(result, 50.0)
    assert loose.estimated_bytes < tight.estimated_bytes
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(loose.to_policy()))
    policy = parse_policy(str(path))
    bits = policy_bits(str(path))
    assert isinstance(bits, tuple) and len(bits) == 26
    assert policy is not None and {p for p, _ in policy.rules} == {
        layer["name"] for layer in result.layers
    }
    with pytest.raises(ValueError, match=r"budget|max-drop"):
        plan_from_sensitivity(result, -1.0)


def _designed() -> SensitivityResult:
    """Three layers whose loss rises 0.02 / 0.1 (prune 50 / 90 %) and 0.01 / 0.05 (8 / 4 bits)."""
    config = SensitivityConfig(sparsities=(0.5, 0.9), bits=(8, 4))
    probes, layers = [], []
    for name in ("a", "b", "c"):
        layers.append(
            {"name": name, "prefix": name, "numel": 10_000, "sparsity": 0.0, "distinct": 10_000}
        )
        for kind, value, rise in (
            ("prune", 0.5, 0.02),
            ("prune", 0.9, 0.1),
            ("bits", 8, 0.01),
            ("bits", 4, 0.05),
        ):
            probes.append(
                Probe(name, name, kind, value, 0.6 - rise, 0.9, 1.0 + rise, 0.0, True, 0.0)
            )
    return SensitivityResult(
        100, {"top1": 0.6, "top5": 0.9, "loss": 1.0}, tuple(probes), tuple(layers), config, 0.0
    )


def test_plan_costs_come_from_the_loss_and_add_up() -> None:
    result = _designed()
    assert loss_scale(result) == pytest.approx(100.0)  # top-1 drop 1 point per 0.01 of loss
    for budget in (0.0, 3.0, 12.0, 100.0):
        plan = plan_from_sensitivity(result, budget)
        assert plan.predicted_drop <= budget + 1e-9
    everything = plan_from_sensitivity(result, 100.0)
    assert all((layer.sparsity, layer.bits) == (0.9, 4) for layer in everything.layers)
    assert everything.predicted_drop == pytest.approx(3 * (10 + 5))
    assert plan_from_sensitivity(result, 0.0).estimated_bytes > everything.estimated_bytes


def test_calibration_shrinks_the_budget_until_the_measured_loss_fits() -> None:
    result = _designed()
    calls: list[float] = []

    def pessimistic(plan: Plan) -> tuple[float, int]:  # reality is 3x worse than predicted
        calls.append(plan.max_drop)
        return 0.6 - 3 * plan.predicted_drop / 100, plan.estimated_bytes

    plan = calibrate_plan(result, 12.0, pessimistic)
    assert plan.measured is not None and plan.measured["drop"] <= 12.0 + 1e-9
    assert calls[0] == 12.0 and len(calls) >= 2 and len(plan.rounds) == len(calls)
    assert plan.rounds[0]["drop"] > 12.0
    exact = calibrate_plan(result, 12.0, lambda p: (0.6 - p.predicted_drop / 100, 1))
    assert len(exact.rounds) == 1 and exact.max_drop == 12.0  # the full budget fits at once


def test_cli_writes_outputs_reuses_them_and_plans(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = create_model("squeezenet_small", num_classes=10, seed=0)
    weights = save_weights(
        model, tmp_path / "m.safetensors", model_name="squeezenet_small", preprocess=CIFAR10
    )
    argv = [
        "sensitivity",
        weights,
        "--data",
        "synthetic",
        "--sparsities",
        "0.5",
        "--bits",
        "4",
        "--layers",
        "conv1,*.expand3x3",
        "--out",
        tmp_path / "s",
        "--json",
        "-q",
    ]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0, stdout
    document = json.loads(stdout)
    assert document["probes"] == 2 * 9
    for name in ("sensitivity.json", "sensitivity.csv", "sensitivity.png"):
        assert (tmp_path / "s" / name).stat().st_size > 0
    code, stdout, stderr = run(capsys, *argv, "--plan", "--max-drop", "3")
    assert code == 0 and "reusing" in stderr
    plan = json.loads(stdout)["plan"]
    assert plan["predicted_drop_points"] <= 3
    assert plan["measured"]["drop"] <= 3 and plan["rounds"]  # compressed and evaluated
    code, stdout, _ = run(
        capsys, "compress", weights, "-o", tmp_path / "p.sqz", "--policy", plan["policy"], "--json"
    )
    assert code == 0, stdout
    assert (tmp_path / "p.sqz").is_file()


def test_cli_rejects_bad_lists_and_unknown_layers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = create_model("squeezenet_small", num_classes=10, seed=0)
    weights = save_weights(
        model, tmp_path / "m.safetensors", model_name="squeezenet_small", preprocess=CIFAR10
    )
    code, _, stderr = run(capsys, "sensitivity", weights, "--data", "synthetic", "--bits", "x")
    assert code == 2 and "--bits" in stderr and "Traceback" not in stderr
    code, _, stderr = run(
        capsys,
        "sensitivity",
        weights,
        "--data",
        "synthetic",
        "--layers",
        "nope*",
        "-o",
        tmp_path / "s",
    )
    assert code == 2 and "matched no layer" in stderr


def test_the_job_needs_an_existing_model_file_and_a_known_split(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="registry name"):
        run_sensitivity(SensitivityJob("squeezenet_small", "synthetic", tmp_path, CONFIG))
    with pytest.raises(MissingFileError, match="not found"):
        run_sensitivity(SensitivityJob(str(tmp_path / "m.safetensors"), "synthetic", tmp_path))
    with pytest.raises(ConfigError, match="--split"):
        SensitivityJob(str(tmp_path / "m.safetensors"), "synthetic", tmp_path, split="val")
    assert not list(tmp_path.iterdir())  # nothing written


def _small_weights(tmp_path: Path) -> Path:
    # a quarter of squeezenet_small's widths: the plan runs a sweep, a calibration and a report,
    # each a few hundred forward passes, and none of them needs a wide model
    model = create_model("squeezenet_small", num_classes=10, seed=0, base_e=32, incr_e=32)
    return save_weights(
        model, tmp_path / "m.safetensors", model_name="squeezenet_small", preprocess=CIFAR10
    )


def test_plan_with_calib_never_reads_the_evaluation_data_until_the_report(
    tmp_path: Path,
) -> None:
    from squeezenet.errors import UserError
    from squeezenet.experiments.sensitivity_result import SensitivityConfig
    from squeezenet.experiments.sensitivity_run import SensitivityJob, run_sensitivity

    poison = tmp_path / "poison.csv"
    poison.write_text("\x00 not a manifest, reading it fails\n")
    config = SensitivityConfig(sparsities=(0.5,), bits=(4,), layers="conv1,*.expand3x3")
    events: list[str] = []
    job = SensitivityJob(
        _small_weights(tmp_path), str(poison), tmp_path / "s", config,
        plan=True, max_drop=3.0, calib="synthetic",
    )  # fmt: skip
    with pytest.raises(UserError):
        run_sensitivity(job, callback=lambda event: events.append(event.info))
    # the sweep, the plan and its calibration all ran on the calibration set
    assert (tmp_path / "s" / "policy.json").is_file()
    stored = json.loads((tmp_path / "s" / "sensitivity.json").read_text())
    assert stored["meta"]["source"]["data"] == "synthetic"
    assert events[-1] == f"report on {poison}"  # the evaluation data is read only here


def test_plan_with_calib_reports_on_the_evaluation_data(tmp_path: Path) -> None:
    from squeezenet.experiments.sensitivity_result import SensitivityConfig
    from squeezenet.experiments.sensitivity_run import SensitivityJob, run_sensitivity

    config = SensitivityConfig(sparsities=(0.5,), bits=(4,), layers="conv1,*.expand3x3")
    job = SensitivityJob(
        _small_weights(tmp_path), "synthetic", tmp_path / "s", config,
        plan=True, max_drop=3.0, calib="synthetic", split="train",
    )  # fmt: skip
    outcome = run_sensitivity(job)
    report = outcome.to_dict()["plan"]["report"]
    assert report["chosen_on"] == "synthetic" and report["file_bytes"] > 0
    assert report["drop_points"] == pytest.approx(
        100 * (report["baseline_top1"] - report["top1"]), abs=1e-3
    )


def test_a_calibration_set_scores_agreement_with_the_uncompressed_model(tmp_path: Path) -> None:
    """With --calib the images are labelled by the model itself: its baseline top-1 is 1.0
    (agreement), whatever labels the set came with."""
    from squeezenet.experiments.sensitivity_result import SensitivityConfig
    from squeezenet.experiments.sensitivity_run import SensitivityJob, run_sensitivity

    config = SensitivityConfig(sparsities=(0.9,), bits=(2,), layers="conv1")
    weights = _small_weights(tmp_path)
    job = SensitivityJob(weights, "synthetic", tmp_path / "s", config, calib="synthetic")
    result = run_sensitivity(job).result
    assert result.baseline["top1"] == 1.0
    assert result.meta["source"]["labels"] == "teacher"
    assert all(p.top1 <= 1.0 for p in result.probes)
    plain = run_sensitivity(SensitivityJob(weights, "synthetic", tmp_path / "p", config)).result
    assert plain.baseline["top1"] < 0.5  # an untrained model against the set's own labels
