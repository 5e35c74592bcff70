"""Dense-sparse-dense: phase 2 keeps zeros where the masks are, phase 3 trains them again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from cli_helpers import run
from squeezenet.compress.prune import weight_layers
from squeezenet.experiments.dsd import DSDConfig, DSDEvent, run_dsd
from squeezenet.train.compare import paired_se
from squeezenet.train.config import recipe
from squeezenet.train.loop import FitEvent
from squeezenet.workflows.load import load_any

TINY = recipe("small", batch_size=32, warmup_epochs=0.0, checkpoint_every=0)
CONFIG = DSDConfig(
    model="squeezenet_small",
    data="synthetic",
    policy="0.6",
    dense_epochs=1,
    sparse_epochs=1,
    redense_epochs=1,
    train=TINY,
    train_images=96,
    test_images=64,
)


@pytest.fixture(scope="module")
def dsd_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("dsd")
    return out, run_dsd(CONFIG, out)


def _weights(out: Path, phase: str) -> dict[str, torch.Tensor]:
    model = load_any(out / phase / "model.safetensors").model
    return {name: m.weight.detach().clone() for name, m in weight_layers(model)}


def test_sparse_phase_keeps_the_pruned_weights_at_zero(dsd_run: tuple[Path, dict]) -> None:
    out, document = dsd_run
    dense, sparse = _weights(out, "dense"), _weights(out, "sparse")
    for name, weight in sparse.items():
        pruned = weight == 0
        # 60 % of every layer is zero after retraining: the masks held through the optimiser
        assert pruned.float().mean() == pytest.approx(0.6, abs=0.01), name
        # and they are the smallest-magnitude weights of the dense model
        assert dense[name][pruned].abs().max() <= dense[name][~pruned].abs().min() + 1e-12
        # the kept weights did train
        assert not torch.equal(weight[~pruned], dense[name][~pruned])
    assert document["phases"]["sparse"]["pruned_sparsity"] == pytest.approx(0.6, abs=0.01)


def test_redense_phase_updates_the_pruned_weights(dsd_run: tuple[Path, dict]) -> None:
    out, document = dsd_run
    sparse, redense = _weights(out, "sparse"), _weights(out, "redense")
    for name, weight in redense.items():
        pruned = sparse[name] == 0
        assert (weight[pruned] != 0).float().mean() > 0.9, name  # they train again
    phases = document["phases"]
    assert phases["redense"]["start_sparsity"] == pytest.approx(0.6, abs=0.01)
    assert phases["redense"]["lr"] == pytest.approx(TINY.lr * 0.1)
    assert phases["redense"]["sparsity"] < 0.01


def test_baseline_gets_the_same_epochs_and_schedules(dsd_run: tuple[Path, dict]) -> None:
    _, document = dsd_run
    phases = document["phases"]
    assert list(phases) == ["dense", "sparse", "redense", "baseline_sparse", "baseline_redense"]
    assert phases["baseline_sparse"]["lr"] == phases["sparse"]["lr"]
    assert phases["baseline_redense"]["lr"] == phases["redense"]["lr"]
    assert phases["baseline_sparse"]["sparsity"] < 0.01  # no mask in the baseline arm
    epochs = [phases[p]["epochs"] for p in phases]
    assert epochs[0] + epochs[1] + epochs[2] == epochs[0] + epochs[3] + epochs[4]
    summary = document["summary"]
    assert summary["total_epochs"] == 3
    assert summary["gain_points"] == pytest.approx(
        100 * (phases["redense"]["top1"] - phases["baseline_redense"]["top1"]), abs=0.01
    )


def test_summary_pairs_the_two_final_models_on_the_same_images(dsd_run: tuple[Path, dict]) -> None:
    _, document = dsd_run
    paired, phases = document["summary"]["paired"], document["phases"]
    assert paired["images"] == 64
    # the difference is the images only DSD gets right minus those only the baseline gets right
    assert paired["top1_diff"] == (paired["only_dsd"] - paired["only_baseline"]) / 64
    # and it is the phases' own evaluation (float32 both; an argmax tie may flip at most one)
    diff = phases["redense"]["top1"] - phases["baseline_redense"]["top1"]
    assert paired["top1_diff"] == pytest.approx(diff, abs=1.01 / 64)
    discordant = paired["only_dsd"] + paired["only_baseline"]
    assert 1 - paired["agreement"] >= discordant / 64 - 1e-9  # each discordant image disagrees
    assert paired["top1_diff_se"] == pytest.approx(
        paired_se(paired["only_dsd"], paired["only_baseline"], 64)
    )


def test_rerun_skips_finished_phases_and_refuses_other_settings(
    dsd_run: tuple[Path, dict],
) -> None:
    out, document = dsd_run
    events: list[DSDEvent] = []
    again = run_dsd(CONFIG, out, callback=events.append, meta={"machine": "another"})
    assert {e.kind for e in events} == {"skip"} and again["phases"] == document["phases"]
    assert again.get("meta") == document.get("meta")  # a rerun that trains nothing keeps it
    with pytest.raises(ValueError, match="other settings"):
        run_dsd(DSDConfig(**{**CONFIG.__dict__, "policy": "0.3"}), out)


def test_cli_dsd_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = [
        "dsd",
        "squeezenet_small",
        "--data",
        "synthetic",
        "--out",
        tmp_path,
        "--sparsity",
        "0.5",
        "--dense-epochs",
        "1",
        "--train-images",
        "64",
        "--test-images",
        "32",
        "--batch-size",
        "32",
        "--no-baseline",
        "--json",
        "-q",
    ]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0
    document = json.loads(stdout)
    assert list(document["phases"]) == ["dense", "sparse", "redense"]
    assert document["meta"]["machine"]["torch"] == torch.__version__
    code, _, stderr = run(
        capsys,
        "dsd",
        "squeezenet_small",
        "--data",
        "synthetic",
        "--out",
        tmp_path / "x",
        "--sparsity",
        "1.5",
    )
    assert code == 2 and "sparsity" in stderr and "Traceback" not in stderr


def test_a_phase_killed_mid_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    config = DSDConfig(**{**CONFIG.__dict__, "sparse_epochs": 2, "baseline": False})
    whole = run_dsd(config, tmp_path / "whole")

    def kill_in_sparse(phase: str) -> Callable[[FitEvent], None] | None:
        def on_event(event: FitEvent) -> None:
            if event.kind == "epoch":  # after the sparse phase's first epoch and its checkpoint
                raise KeyboardInterrupt

        return on_event if phase == "sparse" else None

    with pytest.raises(KeyboardInterrupt):
        run_dsd(config, tmp_path / "cut", fit_callback=kill_in_sparse)
    assert not (tmp_path / "cut" / "sparse" / "model.safetensors").exists()
    resumed = run_dsd(config, tmp_path / "cut")
    assert resumed["phases"]["sparse"]["resumed_at_step"] == 3  # 96 images / 32 a epoch
    for phase in ("sparse", "redense"):
        assert resumed["phases"][phase]["top1"] == whole["phases"][phase]["top1"], phase
        a, b = _weights(tmp_path / "whole", phase), _weights(tmp_path / "cut", phase)
        assert all(torch.equal(a[name], b[name]) for name in a), phase
