"""The main job: train a SqueezeNet, prune, quantize, fine-tune, and write a verified .sqz file.

Deep Compression (Han et al., 2016) applied to the small-input SqueezeNet, in four stages:

1. ``dense``: train from scratch (SqueezeNet Sec. 4 architecture, batch norm added).
2. ``prune``: magnitude pruning with masks, then retraining (Deep Compression Sec. 2).
3. ``quantize``: weight sharing by k-means, then fine-tuning the centroids (Sec. 3).
4. ``encode``: write the ``.sqz`` (Sec. 4, docs/FORMAT.md), decode it from the file, and check
   that the decoded model's logits equal the fine-tuned model's; evaluate the decoded model.

Each stage starts from the file the previous one wrote and ends by writing its record
``<folder>/stage.json``. A rerun skips a stage whose record and file exist and resumes a
half-finished training from its checkpoint (the stage folder is :func:`fit`'s run folder).
Progress goes to a callback; printing is the CLI's job.

The output folder::

    pipeline.json                       the configuration (a rerun must match it)
    1-dense/ 2-prune/ 3-quantize/       fit run folders (checkpoint, metrics) + stage.json
    4-encode/stage.json                 sizes, the decode check, the decoded model's accuracy
    dense.safetensors pruned.safetensors quantized.safetensors   the model after each stage
    check.safetensors                   the check batch and the fine-tuned model's logits on it
    model.sqz                           the compressed model
    report.json accuracy_vs_size.png    the final report and its plot

The configuration lives in :mod:`~squeezenet.experiments.pipeline_config`, the report and its
plot in :mod:`~squeezenet.experiments.pipeline_report`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from squeezenet.atomic import atomic_write_bytes
from squeezenet.compress.config import describe_bits, describe_policy
from squeezenet.compress.plain_data import from_compressed, to_compressed
from squeezenet.compress.prune import prune_
from squeezenet.compress.sizes import stage_sizes
from squeezenet.compress.weight_sharing import quantize_
from squeezenet.data.datasets import draw
from squeezenet.errors import InputError
from squeezenet.experiments.pipeline_config import STAGES, PipelineConfig
from squeezenet.experiments.pipeline_report import PipelineReport, build_report
from squeezenet.formats.sqz import read_sqz, write_sqz
from squeezenet.io.weights import atomic_save_safetensors, save_weights
from squeezenet.train.evaluate import EvalResult, eval_batches, evaluate
from squeezenet.train.loop import FitEvent, fit
from squeezenet.train.run_folder import CHECKPOINT, STATE_JSON
from squeezenet.workflows.build import Built, build
from squeezenet.workflows.load import load_any
from squeezenet.workflows.train_run import RunSpec, build_spec

logger = logging.getLogger(__name__)

FOLDERS = {"dense": "1-dense", "prune": "2-prune", "quantize": "3-quantize", "encode": "4-encode"}
ARTIFACTS = {
    "dense": "dense.safetensors",
    "prune": "pruned.safetensors",
    "quantize": "quantized.safetensors",
    "encode": "model.sqz",
}
CONFIG_JSON, STAGE_JSON, BEFORE_JSON = "pipeline.json", "stage.json", "before.json"
CHECK, REPORT_JSON, PLOT = "check.safetensors", "report.json", "accuracy_vs_size.png"


class DecodeMismatchError(RuntimeError):
    """The model decoded from the .sqz file does not reproduce the fine-tuned model's logits."""


class PipelineResumeError(InputError):
    """The output folder holds a run with another configuration."""


@dataclass(frozen=True)
class PipelineEvent:
    """Progress report sent to the ``callback`` of :func:`run_pipeline`."""

    kind: str  # "stage" (starts), "skip" (done earlier), "fit", "eval" (progress), "done"
    stage: str  # one of STAGES
    index: int  # 1-based position of the stage
    message: str = ""  # what the stage or evaluation does, for a progress line
    fit: FitEvent | None = None  # kind "fit": fit's own report
    done: int = 0  # kind "eval": images evaluated so far ...
    total: int = 0  # ... of this many
    record: Mapping[str, Any] = field(default_factory=dict)  # "done" / "skip": the stage record


def nchw_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode logits on CPU in NCHW layout: two models with equal weights agree bit for bit.

    The layout is forced, not checked: a ``(N, 1, H, W)`` batch is "contiguous" with channels-last
    strides too, and the convolution picks its kernel (and rounding) from the strides.
    """
    model.eval().to("cpu").to(memory_format=torch.contiguous_format)  # restrides params, buffers
    with torch.no_grad():
        out: torch.Tensor = model(x.clone(memory_format=torch.contiguous_format))
    return out


class _Run:
    """One call of :func:`run_pipeline`: the folder, the data (loaded once, when needed), events."""

    def __init__(
        self,
        config: PipelineConfig,
        out: Path,
        callback: Callable[[PipelineEvent], None] | None,
        device: str | torch.device,
    ) -> None:
        self.config, self.out, self.callback, self.device = config, out, callback, device
        self.stage, self.index = "", 0
        self._built: Built | None = None

    def emit(self, kind: str, **kw: Any) -> None:
        if self.callback is not None:
            self.callback(PipelineEvent(kind, self.stage, self.index, **kw))

    def built(self) -> Built:
        """The fresh model, its preprocessing and class names, the train and test subsets."""
        if self._built is None:
            c = self.config
            spec = RunSpec(
                c.model, c.data, c.train_config("dense"), c.data_dir, dict(c.overrides), c.download
            )
            self._built = build(
                dataclasses.replace(
                    build_spec(spec), train_images=c.train_images, test_images=c.test_images
                )
            )
        return self._built

    def path(self, name: str) -> Path:
        return self.out / name

    def folder(self, stage: str | None = None) -> Path:
        return self.out / FOLDERS[stage or self.stage]

    def train(self, model: nn.Module, epochs: float) -> dict[str, Any]:
        """Fit ``model`` on ``epochs`` of the training set (resuming its checkpoint, if any)."""
        built = self.built()
        preprocess, train = built.preprocess, built.train_split
        config = self.config.train_config(self.stage)
        count = max(config.batch_size, round(epochs * len(train)))
        run_dir = self.folder()
        resumed = (run_dir / CHECKPOINT).is_file()
        result = fit(
            model,
            draw(train, count, self.config.seed * 1000 + self.index),
            config,
            preprocess=preprocess,
            run_dir=run_dir,
            resume=resumed,
            callback=lambda event: self.emit("fit", fit=event),
            device=self.device,
        )
        last = result.history[-1] if result.history else {}
        return {
            "images": count,
            "steps": result.steps,
            "train_loss": last.get("train_loss"),
            "images_per_s": last.get("images_per_s"),
            "collapsed": result.collapsed,
            "resumed": resumed,
            "train_config": config.to_dict(),
        }

    def evaluate(self, model: nn.Module, message: str) -> EvalResult:
        built = self.built()
        preprocess, test = built.preprocess, built.test_data
        done = [0]

        def on_batch(n: int) -> None:
            done[0] += n
            self.emit("eval", message=message, done=done[0], total=len(test))

        self.emit("eval", message=message, done=0, total=len(test))
        model.to(self.device).to(memory_format=torch.channels_last)  # 2x faster than NCHW on CPU
        return evaluate(
            model, test, preprocess, batch_size=256, device=self.device, on_batch=on_batch
        )

    def before(self, model: nn.Module, message: str) -> float:
        """Top-1 right after pruning / sharing, cached so a resumed stage does not repeat it."""
        path = self.folder() / BEFORE_JSON
        if path.is_file():
            return float(json.loads(path.read_text())["top1"])
        top1 = self.evaluate(model, message).top1
        atomic_write_bytes(path, json.dumps({"top1": top1}).encode())
        return top1

    def save(self, model: nn.Module, stage: str) -> Path:
        built = self.built()
        model = model.to("cpu").to(memory_format=torch.contiguous_format)
        return save_weights(
            model, self.path(ARTIFACTS[stage]), model_name=built.model_name,
            preprocess=built.preprocess, class_names=built.classes,
        )  # fmt: skip

    def load(self, stage: str) -> nn.Module:
        return load_any(self.path(ARTIFACTS[stage])).model.train()

    def check_inputs(self) -> torch.Tensor:
        """The first ``check_images`` test images, preprocessed: ``(N, C, H, W)`` float32."""
        built = self.built()
        x, _ = next(iter(eval_batches(built.test_data, built.preprocess, self.config.check_images)))
        return x.cpu().clone(memory_format=torch.contiguous_format)  # safetensors wants NCHW


def _stage_dense(run: _Run) -> dict[str, Any]:
    model = run.built().model
    record = run.train(model, run.config.dense_epochs)
    run.save(model, "dense")
    return {**record, **run.evaluate(model, "test top-1").to_dict()}


def _stage_prune(run: _Run) -> dict[str, Any]:
    model = run.load("dense")
    report = prune_(model, run.config.policy)
    before = run.before(model, "top-1 after pruning")
    record = run.train(model, run.config.prune_epochs)
    run.save(model, "prune")
    layers = {layer.name: round(layer.sparsity, 4) for layer in report.layers}
    return {
        **record,
        **run.evaluate(model, "test top-1").to_dict(),
        "top1_before": before,
        "sparsity": report.sparsity,
        "kept": report.kept,
        "numel": report.numel,
        "layer_sparsity": layers,
    }


def _bits(config: PipelineConfig) -> int | dict[str, int]:
    return config.bits if isinstance(config.bits, int) else dict(config.bits)


def _stage_quantize(run: _Run) -> dict[str, Any]:
    model = run.load("prune")
    report = quantize_(model, _bits(run.config), seed=run.config.seed)
    before = run.before(model, "top-1 after weight sharing")
    record = run.train(model, run.config.quantize_epochs)
    x = run.check_inputs()
    tensors = {"inputs": x, "logits": nchw_logits(model, x)}
    atomic_save_safetensors(tensors, run.path(CHECK), {"what": "fine-tuned model's logits"})
    run.save(model, "quantize")
    return {
        **record,
        **run.evaluate(model, "test top-1").to_dict(),
        "top1_before": before,
        "clusters": {layer.name: layer.clusters for layer in report.layers},
    }


def _stage_encode(run: _Run) -> dict[str, Any]:
    built = run.built()
    model = run.load("quantize")
    # Lossless: each layer holds at most 2**bits distinct values, which k-means keeps exactly.
    shared = quantize_(model, _bits(run.config), seed=run.config.seed)
    assert all(layer.rmse == 0.0 for layer in shared.layers), "re-sharing changed weights"
    compressed = to_compressed(
        model, model_name=built.model_name, preprocess=built.preprocess, class_names=built.classes
    )
    sqz = run.path(ARTIFACTS["encode"])
    file_bytes = write_sqz(compressed, sqz)
    decoded_cm = read_sqz(sqz)
    decoded = from_compressed(decoded_cm)
    check = load_file(str(run.path(CHECK)))
    diff = float((nchw_logits(decoded, check["inputs"]) - check["logits"]).abs().max())
    if not diff <= run.config.tolerance:
        raise DecodeMismatchError(
            f"the model decoded from {sqz} differs from the fine-tuned model: max |logit "
            f"difference| {diff:.3g} on {len(check['inputs'])} images exceeds "
            f"{run.config.tolerance:g}; the encoder or decoder is broken, please report it"
        )
    sizes = stage_sizes(decoded_cm, file_bytes)
    return {
        **run.evaluate(decoded, "decoded .sqz top-1").to_dict(),
        "file": sqz.name,  # relative: the folder may move
        "file_bytes": file_bytes,
        "check_images": len(check["inputs"]),
        "check_max_abs_diff": diff,
        "sizes": [dataclasses.asdict(size) for size in sizes],
    }


_STAGE_FNS: dict[str, Callable[[_Run], dict[str, Any]]] = {
    "dense": _stage_dense,
    "prune": _stage_prune,
    "quantize": _stage_quantize,
    "encode": _stage_encode,
}
_MESSAGES = {
    "dense": "train the dense model",
    "prune": "prune ({policy}) and retrain with masks",
    "quantize": "share weights (k-means, {bits}) and fine-tune the centroids",
    "encode": "write the .sqz, decode it, check logits, evaluate",
}


def _clear(out: Path, stages: tuple[str, ...]) -> None:
    """Forget the progress of ``stages``: their records, cached evaluations and checkpoints."""
    for stage in stages:
        for name in (STAGE_JSON, BEFORE_JSON, CHECKPOINT, STATE_JSON):
            (out / FOLDERS[stage] / name).unlink(missing_ok=True)
    (out / REPORT_JSON).unlink(missing_ok=True)


def _prepare(out: Path, config: PipelineConfig, resume: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    saved_path = out / CONFIG_JSON
    current = config.to_dict()
    if resume and saved_path.is_file():
        saved = json.loads(saved_path.read_text())
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if changed:
            first = changed[0]
            raise PipelineResumeError(
                f"{out} holds a pipeline run with another configuration ({first} was "
                f"{saved.get(first)!r}, now {current.get(first)!r}; {len(changed)} field(s) "
                "differ): rerun with the same options, pick another output folder, or restart"
            )
        return
    _clear(out, STAGES)
    atomic_write_bytes(saved_path, json.dumps(current, indent=2).encode())


def run_pipeline(
    config: PipelineConfig,
    out_dir: str | Path,
    *,
    callback: Callable[[PipelineEvent], None] | None = None,
    resume: bool = True,
    device: str | torch.device = "cpu",
) -> PipelineReport:
    """Train, prune, quantize and encode per ``config``; everything goes to ``out_dir``.

    Args:
        config: data, model, budgets, pruning policy and bit widths.
        out_dir: the output folder (created); see the module docstring for its files.
        callback: receives :class:`PipelineEvent` progress reports.
        resume: skip the stages an earlier run with the same config finished and continue a
            half-finished training from its checkpoint; False starts over.
        device: where training and evaluation run; the decode check runs on CPU.

    Raises:
        PipelineResumeError: ``out_dir`` holds a run with another configuration.
        DecodeMismatchError: the decoded file does not reproduce the fine-tuned logits.
        UserError: a bad data spec or model name, or a missing dataset (ConfigError,
            MissingFileError, ...).
    """
    started = time.perf_counter()
    out = Path(out_dir)
    _prepare(out, config, resume)
    run = _Run(config, out, callback, device)
    records: dict[str, dict[str, Any]] = {}
    skipped: set[str] = set()
    for index, stage in enumerate(STAGES, 1):
        run.stage, run.index = stage, index
        marker = run.folder() / STAGE_JSON
        if marker.is_file() and run.path(ARTIFACTS[stage]).is_file():
            records[stage] = json.loads(marker.read_text())
            skipped.add(stage)
            run.emit("skip", message=f"finished earlier: {ARTIFACTS[stage]}", record=records[stage])
            continue
        records[stage] = _run_stage(run, marker)
    seconds = time.perf_counter() - started
    report = build_report(config, out, out / PLOT, records, skipped, seconds)
    atomic_write_bytes(out / REPORT_JSON, json.dumps(report.to_dict(), indent=2).encode())
    return report


def _run_stage(run: _Run, marker: Path) -> dict[str, Any]:
    """Run ``run.stage`` from the start (later stages are forgotten); write its record."""
    config, stage = run.config, run.stage
    _clear(run.out, STAGES[run.index :])
    run.folder().mkdir(parents=True, exist_ok=True)
    bits = f"{config.bits} bits" if isinstance(config.bits, int) else describe_bits(config.bits)
    message = _MESSAGES[stage].format(policy=describe_policy(config.policy), bits=bits)
    run.emit("stage", message=message)
    clock = time.perf_counter()
    record = {"stage": stage, **_STAGE_FNS[stage](run)}
    record["seconds"] = round(time.perf_counter() - clock, 3)  # this run's share only
    atomic_write_bytes(marker, json.dumps(record, indent=2).encode())
    logger.info("pipeline stage %s done: top-1 %.4f", stage, record["top1"])
    run.emit("done", message=message, record=record)
    return record
