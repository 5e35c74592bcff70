"""fit: learning, metrics files, collapse detection, weights files, resume and DDP."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from squeezenet.data import CIFAR10, FASHION_MNIST, load_dataset
from squeezenet.data.fashion import FASHION_MNIST_DIR
from squeezenet.errors import ConfigError, UserError
from squeezenet.io.weights import load_model, save_weights
from squeezenet.models import create_model
from squeezenet.train import CheckpointError, fit, recipe
from squeezenet.train.collapse import CollapseWatch

TINY = {"base_e": 16, "incr_e": 16}  # a squeezenet_small of ~20k parameters
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def test_fit_lowers_the_loss_and_writes_metrics(tmp_path: Path) -> None:
    train = load_dataset("synthetic", "train", synthetic_size=512)
    test = load_dataset("synthetic", "test", synthetic_size=512)
    model = create_model("squeezenet_small", seed=0, **TINY)
    # float32: on this 20k-parameter toy, bf16 autocast (the recipe's default) lowers the loss
    # more slowly (2.20 -> 1.82 vs 2.21 -> 1.62 in 5 epochs); bf16 has its own test below.
    config = recipe("small", epochs=5, batch_size=32, lr=0.1, warmup_epochs=0.5, bf16=False)
    result = fit(model, train, config, preprocess=CIFAR10, eval_data=test, run_dir=tmp_path)
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < 0.8 * losses[0]
    assert result.history[-1]["top1"] > 0.3
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    assert (tmp_path / "metrics.csv").read_text().startswith("epoch,step,lr,train_loss")


# Slow (200 steps: ~7 s). In the default suite, fit lowering the loss is
# test_fit_lowers_the_loss_and_writes_metrics, the Fashion-MNIST reader is
# data/test_datasets.py::test_fashion_mnist_from_the_debian_package and a one-channel model is
# test_weights_file_round_trip; with them this test covers no line of src/ more (coverage.py).
@pytest.mark.slow
@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="apt-get install -y dataset-fashion-mnist"
)
def test_a_few_hundred_steps_on_fashion_mnist_lower_the_loss() -> None:
    train = load_dataset("fashion-mnist", "train")
    model = create_model("squeezenet_small", seed=0, in_channels=1, base_e=32, incr_e=32)
    config = recipe("small", epochs=1, batch_size=32, max_steps=200, warmup_epochs=0.01)
    losses: list[float] = []
    fit(
        model,
        train,
        config,
        preprocess=FASHION_MNIST,
        callback=lambda e: losses.append(e.loss) if e.kind == "step" else None,
    )
    assert len(losses) == 200
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.75 * first, (first, last)


def test_collapse_watch_warns_on_chance_loss_and_dead_logits() -> None:
    watch = CollapseWatch(10, patience=5)
    logits = torch.zeros(4, 10)
    messages = [watch.update(math.log(10), logits) for _ in range(6)]
    assert any(m and "collapsed" in m for m in messages)
    healthy = CollapseWatch(10, patience=5)
    assert all(healthy.update(1.0, torch.ones(4, 10)) is None for _ in range(20))


def test_collapse_watch_ignores_chance_loss_in_the_warm_up() -> None:
    """Loss at ln(classes) counts only after the warm-up; dead logits count at once; the advice
    fits the model; the state survives a round trip."""
    watch = CollapseWatch(10, patience=5, warmup_steps=100, batch_norm=True)
    alive = torch.ones(4, 10)
    assert all(watch.update(math.log(10), alive, step) is None for step in range(100))
    messages = [watch.update(math.log(10), alive, step) for step in range(100, 106)]
    warning = next(m for m in messages if m)
    assert "after the warm-up" in warning and "batch_norm" not in warning
    dead = CollapseWatch(10, patience=5, warmup_steps=100)
    found = [dead.update(math.log(10), torch.zeros(4, 10), step) for step in range(6)]
    assert any(m and "batch_norm=True" in m for m in found)
    copy = CollapseWatch(10, patience=5, warmup_steps=100)
    copy.load_state(json.loads(json.dumps(watch.state())))
    assert copy.state() == watch.state() and copy.fired


def _tiny_run(tmp_path: Path, batch_norm: bool, lr: float, **changes: object) -> object:
    train = load_dataset("synthetic", "train", synthetic_size=320)
    model = create_model("squeezenet_small", seed=0, batch_norm=batch_norm, **TINY)
    config = recipe(
        "small", epochs=8, batch_size=32, lr=lr, warmup_epochs=1.0, collapse_patience=30,
        **changes,
    )  # fmt: skip
    return fit(model, train, config, preprocess=CIFAR10, run_dir=tmp_path)


@pytest.fixture(scope="module")
def collapsed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The batch-norm-free model at a high rate, 8 epochs uninterrupted: its run folder and
    result (two tests read it; neither changes it)."""
    folder = tmp_path_factory.mktemp("collapsed")
    return folder, _tiny_run(folder, False, 2.0)


def test_a_healthy_warm_up_is_no_collapse_and_a_true_collapse_is(
    tmp_path: Path, collapsed: tuple[Path, object]
) -> None:
    """A false alarm once seen: a batch-norm model inside its warm-up (loss still near ln 10)
    is not collapsed; the batch-norm-free model at a high rate collapses and is flagged."""
    healthy = _tiny_run(tmp_path / "bn", True, 0.05, max_steps=9)
    assert not healthy.collapsed  # type: ignore[attr-defined]
    plain, broken = collapsed
    assert broken.collapsed  # type: ignore[attr-defined]
    assert json.loads((plain / "state.json").read_text())["collapse"]["fired"]


def test_the_collapse_flag_survives_a_resume(
    tmp_path: Path, collapsed: tuple[Path, object]
) -> None:
    straight_dir, straight = collapsed
    _tiny_run(tmp_path / "cut", False, 2.0, max_steps=45)  # after the warning fired
    train = load_dataset("synthetic", "train", synthetic_size=320)
    model = create_model("squeezenet_small", seed=0, batch_norm=False, **TINY)
    config = recipe("small", epochs=8, batch_size=32, lr=2.0, warmup_epochs=1.0,
                    collapse_patience=30)  # fmt: skip
    resumed = fit(model, train, config, preprocess=CIFAR10, run_dir=tmp_path / "cut", resume=True)
    assert resumed.collapsed == straight.collapsed  # type: ignore[attr-defined]
    assert resumed.collapsed  # type: ignore[attr-defined]

    def flags(run: Path) -> list[bool]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [bool(json.loads(line).get("collapse_warning")) for line in lines]

    assert flags(tmp_path / "cut") == flags(straight_dir) and any(flags(straight_dir))


def test_fit_respects_parametrized_masks() -> None:
    from torch.nn.utils import parametrize

    class Mask(torch.nn.Module):
        def __init__(self, mask: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return w * self.mask

    model = create_model("squeezenet_small", seed=0, **TINY)
    conv = model.features[0]
    mask = (torch.rand_like(conv.weight) > 0.5).float()
    parametrize.register_parametrization(conv, "weight", Mask(mask))
    fit(
        model,
        load_dataset("synthetic", synthetic_size=64),
        recipe("small", epochs=1, batch_size=32),
        preprocess=CIFAR10,
    )
    assert torch.count_nonzero(conv.weight[mask == 0]) == 0


def test_weights_file_round_trip(tmp_path: Path) -> None:
    model = create_model("squeezenet_small", seed=1, in_channels=1).eval()
    path = save_weights(
        model,
        tmp_path / "m.safetensors",
        model_name="squeezenet_small",
        preprocess=FASHION_MNIST,
        class_names=[str(i) for i in range(10)],
    )
    loaded = load_model(path)
    assert loaded.model_name == "squeezenet_small" and loaded.preprocess == FASHION_MNIST
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x), atol=0, rtol=0)
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def _train_cmd(run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "squeezenet",
        "train",
        "squeezenet_small",
        "--data",
        "synthetic",
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--checkpoint-every",
        "1",
        "--quiet",
        "--set",
        "base_e=16",
        "--set",
        "incr_e=16",
        "-o",
        str(run_dir),
        *extra,
    ]


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path: Path) -> None:
    # The uninterrupted run goes beside the one to kill: one process each (OMP_NUM_THREADS=1),
    # so on two cores the pair costs the time of one.
    straight = tmp_path / "straight"
    reference = subprocess.Popen(
        _train_cmd(straight), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _train_cmd(killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = killed / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline:  # 16 steps per epoch: kill inside the second epoch
        try:
            if json.loads(state.read_text())["global_step"] >= 21:
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = json.loads(state.read_text())
    assert 16 < saved["global_step"] < 48 and saved["step_in_epoch"] > 0, saved
    assert not (killed / "model.safetensors").exists()
    resume = [sys.executable, "-m", "squeezenet", "train", "--resume", str(killed), "--quiet"]
    subprocess.run(resume, env=ENV, check=True, capture_output=True, timeout=300)
    _, errors = reference.communicate(timeout=300)
    assert reference.returncode == 0, errors[-2000:]
    a = load_file(str(straight / "model.safetensors"))
    b = load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    metrics = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]


def test_resume_with_a_different_config_names_the_field(tmp_path: Path) -> None:
    train = load_dataset("synthetic", synthetic_size=64)
    model = create_model("squeezenet_small", seed=0, **TINY)
    fit(
        model, train, recipe("small", epochs=1, batch_size=32), preprocess=CIFAR10, run_dir=tmp_path
    )
    with pytest.raises(CheckpointError, match="'lr'"):
        fit(
            model,
            train,
            recipe("small", epochs=1, batch_size=32, lr=0.5),
            preprocess=CIFAR10,
            run_dir=tmp_path,
            resume=True,
        )


class _Explodes(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """Evaluation data that fails: a crash between an epoch's last step and its end."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        raise RuntimeError("boom")


def test_resume_between_the_last_step_and_the_end_of_an_epoch(tmp_path: Path) -> None:
    train = load_dataset("synthetic", synthetic_size=64)
    config = recipe("small", epochs=2, batch_size=32, checkpoint_every=1)
    straight_model = create_model("squeezenet_small", seed=0, **TINY)
    straight = fit(straight_model, train, config, preprocess=CIFAR10)
    with pytest.raises(RuntimeError, match="boom"):  # the step checkpoint is written, not the
        fit(  # end-of-epoch one
            create_model("squeezenet_small", seed=0, **TINY),
            train,
            config,
            preprocess=CIFAR10,
            eval_data=_Explodes(),
            run_dir=tmp_path,
        )
    assert json.loads((tmp_path / "state.json").read_text())["step_in_epoch"] == 2
    model = create_model("squeezenet_small", seed=0, **TINY)
    resumed = fit(model, train, config, preprocess=CIFAR10, run_dir=tmp_path, resume=True)
    keys = ("epoch", "step", "lr", "train_loss", "train_top1")
    assert [{k: r[k] for k in keys} for r in resumed.history] == [
        {k: r[k] for k in keys} for r in straight.history
    ]
    for key, value in straight_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_bad_batches_and_missing_checkpoints_are_user_errors(tmp_path: Path) -> None:
    train = load_dataset("synthetic", synthetic_size=64)
    model = create_model("squeezenet_small", seed=0, **TINY)
    with pytest.raises(ConfigError, match="larger than the training set"):
        fit(model, train, recipe("small", epochs=1, batch_size=128), preprocess=CIFAR10)
    with pytest.raises(CheckpointError, match="nothing to resume") as caught:
        fit(
            model,
            train,
            recipe("small", epochs=1, batch_size=32),
            preprocess=CIFAR10,
            run_dir=tmp_path,
            resume=True,
        )
    assert isinstance(caught.value, UserError) and isinstance(caught.value, ValueError)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_process_ddp_matches_single_process(tmp_path: Path) -> None:
    # float32: the 1e-5 tolerance below is float32's (bf16 autocast is the recipe's default)
    args = ["--epochs", "1", "--max-steps", "4", "--set", "dropout=0", "--set", "batch_norm=false"]
    args += ["--no-bf16"]
    single = tmp_path / "single"  # beside the launch: it is done while the workers start up
    reference = subprocess.Popen(
        _train_cmd(single, *args), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ddp = tmp_path / "ddp"
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        "-m",
    ]
    command = launcher + _train_cmd(ddp, *args)[2:]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    _, errors = reference.communicate(timeout=300)
    assert reference.returncode == 0, errors[-2000:]
    assert result.returncode == 0, result.stderr[-2000:]
    a = load_file(str(single / "model.safetensors"))
    b = load_file(str(ddp / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0, msg=key)


def test_accumulation_matches_one_big_batch() -> None:
    train = load_dataset("synthetic", synthetic_size=64)
    results = []
    for accumulate in (1, 4):
        model = create_model("squeezenet_small", seed=0, batch_norm=False, dropout=0.0, **TINY)
        config = recipe("small", epochs=1, batch_size=32, accumulate=accumulate, bf16=False)
        fit(model, train, config, preprocess=CIFAR10)
        results.append(model.state_dict())
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key], atol=1e-5, rtol=1e-4, msg=key)


def test_bf16_autocast_trains() -> None:
    model = create_model("squeezenet_small", seed=0, **TINY)
    result = fit(
        model,
        load_dataset("synthetic", synthetic_size=64),
        recipe("small", epochs=1, batch_size=32, bf16=True),
        preprocess=CIFAR10,
    )
    assert math.isfinite(result.history[-1]["train_loss"])


def test_eval_skip_bad_counts_unreadable_images(tmp_path: Path) -> None:
    from PIL import Image

    from squeezenet.data import IMAGENET, csv_manifest
    from squeezenet.train import evaluate

    for i in range(3):
        Image.new("RGB", (64, 64), (i * 80, 0, 0)).save(tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n0.png,0\nbad.png,1\n1.png,1\n2.png,2\n")
    model = create_model("squeezenet1_1", num_classes=3, seed=0)
    small = IMAGENET.__class__(**{**IMAGENET.to_dict(), "resize": 72, "crop": 64})
    result = evaluate(model, csv_manifest(manifest), small, batch_size=2, skip_bad=True)
    assert (result.n, result.skipped) == (3, 1)
