"""Codebook fine-tuning of the published SqueezeNet without ImageNet: what each recipe recovers.

Imports the published Deep Compression SqueezeNet (the teacher), and for every combination of
the list-valued options below re-quantizes a student (uniform bits, or a preset such as
``mixed``), evaluates teacher and student on the ImageNet sample before and after layer-wise
reconstruction and/or distillation on proxy images (CIFAR-10 train, never the evaluation
images), writes each student as a .sqz and prints one JSON document (progress goes to stderr).

    # GPU (H100, ~3 min): reconstruction then KD, and KD alone, for 6-bit, mixed and 5-bit
    PYTHONPATH=src python decisions/bench_distill.py --device cuda --bits 6,mixed,5 \
        --method both,kd --lr 3e-4 --images 40000 --batch-size 128 --recon-images 2048 \
        --mix mosaic --max-seconds 45 --budget-s 210 --json distill.json
    # CPU dry run (~2 min)
    python decisions/bench_distill.py --device cpu --bits 6 --method both --images 32 \
        --batch-size 16 --recon-images 8 --recon-batch-size 8 --eval-limit 30 --monitor-images 8

Comma-separated options (--bits, --method, --lr, --temperature, --train, --mix, --ridge) form
a grid, bits-major; reconstruction results are cached and shared by runs that differ only in KD
settings ("both" also reports the accuracy after reconstruction alone). With --budget-s no new
run starts after that many seconds, and --json is rewritten after every run, so a run cut short
still leaves its finished results.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from squeezenet.compress import from_compressed, quantize_, to_compressed
from squeezenet.compress.distill import DistillConfig, DistillProgress, distill_
from squeezenet.compress.finetune_common import shared_layers
from squeezenet.compress.proxy_sampler import ProxyConfig
from squeezenet.compress.reconstruct import ReconstructConfig, ReconstructReport, reconstruct_
from squeezenet.compress.spellings import parse_bits
from squeezenet.data import FileListDataset, Preprocess, cifar10, csv_manifest
from squeezenet.formats import read_caffe_dc, read_sqz, write_sqz
from squeezenet.models import create_model
from squeezenet.train.evaluate import eval_batches

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METHODS = ("none", "reconstruct", "kd", "both")
log = logging.getLogger("bench_distill")


def _list(kind: type, text: str) -> list[Any]:
    return [kind(item.strip()) for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", default=str(SHARED / "squeezenet-dc/compressed_SqueezeNet.net"))
    p.add_argument("--proxy-data", default=str(SHARED / "cifar10"), help="CIFAR-10 npz folder")
    p.add_argument("--eval-manifest", default=str(SHARED / "imagenet-sample/manifest.csv"))
    p.add_argument("--bits", default="6,5,mixed", help="list: a width, 'mixed', PATTERN=BITS")
    p.add_argument("--method", default="both", help=f"list of {', '.join(METHODS)}")
    p.add_argument("--images", type=int, default=20_000, help="KD proxy images per run")
    p.add_argument("--batch-size", type=int, default=64, help="KD batch size")
    p.add_argument("--optimizer", default="adam", choices=("adam", "sgd"))
    p.add_argument("--lr", default="1e-3", help="list; relative to each tensor's RMS")
    p.add_argument("--temperature", default="2", help="list")
    p.add_argument("--train", default="centroids", help="list: centroids, centroids+bias (KD)")
    p.add_argument("--loss", default="kl", choices=("kl", "mse"))
    p.add_argument("--warmup", type=float, default=0.05, help="fraction of KD steps")
    p.add_argument("--max-seconds", type=float, default=None, help="cap per KD run")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast for KD on CUDA")
    p.add_argument("--recon-images", type=int, default=1024)
    p.add_argument("--recon-batch-size", type=int, default=64)
    p.add_argument(
        "--recon-train", default="centroids+bias", choices=("centroids", "centroids+bias")
    )
    p.add_argument("--ridge", default="1e-3", help="list; reconstruction damping")
    p.add_argument("--mix", default="none", help="list: none, mixup, cutmix, mosaic")
    p.add_argument("--mix-prob", type=float, default=0.5)
    p.add_argument("--min-scale", type=float, default=0.35, help="smallest random crop side")
    p.add_argument("--no-augment", action="store_true", help="no random crops/flips")
    p.add_argument("--monitor-images", type=int, default=256, help="proxy images for the KL")
    p.add_argument("--proxy-limit", type=int, default=0, help="use the first N proxies (0: all)")
    p.add_argument("--eval-limit", type=int, default=0, help="first N eval images (0: all)")
    p.add_argument("--eval-batch-size", type=int, default=100)
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=None, help="where the .sqz files go (default: temp)")
    p.add_argument("--json", default=None, help="also write the JSON here (after every run)")
    p.add_argument("--budget-s", type=float, default=0, help="start no run after this (0: none)")
    args = p.parse_args(argv)
    for method in _list(str, args.method):
        if method not in METHODS:
            p.error(f"--method: {method!r} is not one of {', '.join(METHODS)}")
    return args


class EvalSet:
    """The evaluation images, preprocessed once and kept on the device."""

    def __init__(self, manifest: str, preset: Preprocess, args: argparse.Namespace) -> None:
        data = csv_manifest(manifest)
        if args.eval_limit:
            data = FileListDataset(data.samples[: args.eval_limit], data.classes, None, data.mode)
        batches = eval_batches(data, preset, args.eval_batch_size, workers=args.workers)
        self.batches = [(x.to(args.device), y.to(args.device)) for x, y in batches]
        self.n = sum(len(y) for _, y in self.batches)

    @torch.no_grad()
    def logits(self, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        model.eval()
        outs = [(model(x).float(), y) for x, y in self.batches]
        return torch.cat([o for o, _ in outs]), torch.cat([y for _, y in outs])

    def metrics(self, model: nn.Module, teacher: torch.Tensor | None) -> dict[str, Any]:
        logits, labels = self.logits(model)
        return metrics(logits, labels, teacher)


def metrics(
    logits: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None
) -> dict[str, Any]:
    """top-1/top-5; against the teacher's logits: paired top-1 change, agreement, KL (T=1)."""
    top = logits.topk(5, dim=1).indices
    hit1 = (top[:, 0] == labels).double()
    out: dict[str, Any] = {
        "top1": round(float(hit1.mean()), 4),
        "top5": round(float((top == labels[:, None]).any(1).double().mean()), 4),
    }
    if teacher is not None:
        t_hit1 = (teacher.argmax(1) == labels).double()
        diff = hit1 - t_hit1
        out["d_top1"] = round(float(diff.mean()), 4)
        out["d_top1_se"] = round(float(diff.std() / math.sqrt(len(diff))), 4)
        out["agree_top1"] = round(float((top[:, 0] == teacher.argmax(1)).double().mean()), 4)
        log_p, log_q = teacher.log_softmax(1), logits.log_softmax(1)
        out["kl_to_teacher"] = round(float((log_p.exp() * (log_p - log_q)).sum(1).mean()), 5)
    return out


def state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _tensor(value: Any) -> torch.Tensor:
    assert isinstance(value, torch.Tensor)
    return value.detach()


def invariants(student: nn.Module, assignments: dict[str, torch.Tensor]) -> dict[str, bool]:
    """Assignments as quantize_ left them; every position that stores nothing reads 0."""
    same, zeros = True, True
    for name, module, share in shared_layers(student):
        assignment = _tensor(share.assignment).cpu()
        same &= bool(torch.equal(assignment, assignments[name]))
        pruned = assignment == share.num_centroids
        zeros &= bool((_tensor(module.weight).cpu()[pruned] == 0).all())
    return {"assignments_unchanged": same, "pruned_stay_zero": zeros}


def export(student: nn.Module, cm: Any, path: Path) -> dict[str, Any]:
    """Write the student as .sqz; check that the file decodes to the student's weights."""
    clock = time.perf_counter()
    compressed = to_compressed(
        student, model_name=cm.model_name, preprocess=cm.preprocess, class_names=cm.class_names
    )
    size = write_sqz(compressed, path)
    decoded = from_compressed(read_sqz(path)).state_dict()
    exact = all(
        torch.equal(_tensor(module.weight).cpu(), decoded[f"{name}.weight"])
        for name, module, _ in shared_layers(student)
    )
    seconds = round(time.perf_counter() - clock, 3)
    return {"sqz_bytes": size, "sqz_path": str(path), "decodes_exactly": exact, "export_s": seconds}


def summarize_reconstruct(report: ReconstructReport) -> dict[str, Any]:
    data = report.to_dict()
    data["layers"] = [
        {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}
        for row in data["layers"]
    ]
    return data


def run_one(
    run: dict[str, Any],
    args: argparse.Namespace,
    ctx: dict[str, Any],
    cache: dict[Any, Any],
) -> dict[str, Any]:
    cm, teacher, preset, evalset, proxies = (
        ctx["cm"], ctx["teacher"], ctx["preset"], ctx["eval"], ctx["proxies"]
    )  # fmt: skip
    t_logits = ctx["teacher_logits"]
    out: dict[str, Any] = {"label": run["label"], **{k: v for k, v in run.items() if k != "label"}}
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    bits = parse_bits(run["bits"])
    student = create_model(cm.model_name, **cm.config)
    student.load_state_dict(ctx["teacher_state"])
    quant = quantize_(student, bits if isinstance(bits, int) else dict(bits), seed=args.seed)
    student.to(args.device)
    assignments = {
        name: _tensor(share.assignment).cpu().clone() for name, _, share in shared_layers(student)
    }
    seconds["quantize"] = round(time.perf_counter() - clock, 3)
    out["quantize_rmse"] = {row.name: round(row.rmse, 6) for row in quant.layers}
    if run["bits"] not in cache:
        cache[run["bits"]] = evalset.metrics(student, t_logits)
    out["before"] = cache[run["bits"]]
    proxy = ProxyConfig(
        augment=not args.no_augment,
        min_scale=args.min_scale,
        mix=run["mix"],
        mix_prob=args.mix_prob,
    )
    if run["method"] in ("reconstruct", "both"):
        key = ("recon", run["bits"], run["ridge"], run["mix"])
        if key not in cache:
            config = ReconstructConfig(
                images=args.recon_images,
                batch_size=args.recon_batch_size,
                train=args.recon_train,
                ridge=run["ridge"],
                proxy=proxy,
                monitor_images=args.monitor_images,
                seed=args.seed,
                device=args.device,
            )
            report = reconstruct_(student, teacher, proxies, preset, config)
            state = {k: v.detach().clone() for k, v in student.state_dict().items()}
            cache[key] = (
                summarize_reconstruct(report),
                state,
                evalset.metrics(student, t_logits),
            )
        else:
            student.load_state_dict(cache[key][1])
        out["reconstruct"], _, out["after_reconstruct"] = cache[key]
        seconds["reconstruct"] = out["reconstruct"]["seconds"]
    if run["method"] in ("kd", "both"):
        config_kd = DistillConfig(
            images=args.images,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=run["lr"],
            warmup=args.warmup,
            temperature=run["temperature"],
            loss=args.loss,
            train=run["train"],
            proxy=proxy,
            monitor_images=args.monitor_images,
            max_seconds=args.max_seconds,
            amp=args.amp,
            seed=args.seed,
            device=args.device,
        )

        def progress(p: DistillProgress) -> None:
            log.info("  kd step %d/%d loss %.5f", p.step, p.steps, p.loss)

        report_kd = distill_(student, teacher, proxies, preset, config_kd, callback=progress)
        out["distill"] = report_kd.to_dict()
        out["distill"]["images_per_s"] = round(report_kd.images / max(report_kd.seconds, 1e-9), 1)
        seconds["distill"] = report_kd.seconds
    out["after"] = evalset.metrics(student, t_logits)
    out["invariants"] = invariants(student, assignments)
    out.update(export(student, cm, ctx["out_dir"] / f"{run['slug']}.sqz"))
    seconds["total"] = round(time.perf_counter() - clock, 3)
    out["seconds"] = seconds
    return out


def grid(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = []
    axes = itertools.product(
        _list(str, args.bits),
        _list(str, args.method),
        _list(float, args.lr),
        _list(float, args.temperature),
        _list(str, args.train),
        _list(str, args.mix),
        _list(float, args.ridge),
    )
    seen = set()
    for bits, method, lr, temp, train, mix, ridge in axes:
        kd = method in ("kd", "both")
        recon = method in ("reconstruct", "both")
        key = (bits, method, lr if kd else None, temp if kd else None, train if kd else None,
               mix if kd or recon else None, ridge if recon else None)  # fmt: skip
        if key in seen:
            continue  # an axis that does not apply to this method
        seen.add(key)
        parts = [f"bits={bits}", f"method={method}"]
        parts += [f"lr={lr:g}", f"T={temp:g}", f"train={train}"] if kd else []
        parts += [f"mix={mix}"] if kd or recon else []
        parts += [f"ridge={ridge:g}"] if recon else []
        label = " ".join(parts)
        slug = "".join(c if c.isalnum() or c in "=.-" else "_" for c in label.replace(" ", "_"))
        runs.append(
            {"label": label, "slug": slug, "bits": bits, "method": method, "lr": lr,
             "temperature": temp, "train": train, "mix": mix, "ridge": ridge}
        )  # fmt: skip
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    torch.manual_seed(args.seed)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    clock = start
    cm = read_caffe_dc(args.net)
    assert cm.preprocess is not None  # the Caffe reader always sets it
    preset = Preprocess.from_dict(cm.preprocess)
    teacher = from_compressed(cm).eval()
    teacher_state = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
    clock = lap("load_s", clock)
    evalset = EvalSet(args.eval_manifest, preset, args)  # loader workers fork before CUDA starts
    clock = lap("eval_cache_s", clock)
    teacher.to(args.device)
    digest = state_digest(teacher)
    t_logits, labels = evalset.logits(teacher)
    teacher_metrics = metrics(t_logits, labels, None)
    log.info("teacher on %d images: %s", evalset.n, teacher_metrics)
    proxies = torch.from_numpy(cifar10("train", args.proxy_data).images).permute(0, 3, 1, 2)
    if args.proxy_limit:
        proxies = proxies[: args.proxy_limit]
    clock = lap("proxy_load_s", clock)
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="bench_distill_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = {
        "cm": cm, "teacher": teacher, "teacher_state": teacher_state, "preset": preset,
        "eval": evalset, "proxies": proxies, "teacher_logits": t_logits, "out_dir": out_dir,
    }  # fmt: skip
    document: dict[str, Any] = {
        "benchmark": "distill",
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "argv": sys.argv[1:] if argv is None else argv,
        "args": vars(args),
        "eval_images": evalset.n,
        "proxy_images": len(proxies),
        "teacher": teacher_metrics,
        "runs": [],
        "skipped": [],
        "timings": timings,
    }
    cache: dict[Any, Any] = {}
    for run in grid(args):
        if args.budget_s and time.perf_counter() - start > args.budget_s:
            document["skipped"].append(run["label"])  # out of time: the JSON still comes out
            continue
        log.info("run: %s", run["label"])
        result = run_one(run, args, ctx, cache)
        log.info(
            "  before %s -> after %s, %d bytes, %.1f s",
            result["before"]["top1"], result["after"]["top1"], result["sqz_bytes"],
            result["seconds"]["total"],
        )  # fmt: skip
        document["runs"].append(result)
        _write(document, args.json)  # partial results survive a timeout
    timings["total_s"] = round(time.perf_counter() - start, 3)
    document["teacher_unchanged"] = state_digest(teacher) == digest
    print(_write(document, args.json))
    return 0


def _write(document: dict[str, Any], path: str | None) -> str:
    text = json.dumps(document, indent=1, default=_json_default)
    if path:
        Path(path).write_text(text + "\n")
    return text


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
