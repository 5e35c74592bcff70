"""fit's training throughput: against a bare loop, and across CPU settings, in one run.

    python benchmarks/bench_throughput.py --data cifar10 --steps 60
    python benchmarks/bench_throughput.py --data cifar10 --settings --steps 40
    python benchmarks/bench_throughput.py --data cifar10 --concurrent --steps 60

Default: both loops train the same model (fresh copies from one seed) with the same batch size,
memory layout and optimiser; the bare loop feeds one pre-normalised random batch again and again
(no data pipeline at all), fit reads real CIFAR-10 through its pipeline (shuffle, pad-crop, flip,
normalise). The ratio is fit's images/s over the bare loop's.

``--settings``: fit's images/s under each training setting (float32 channels_last, the old
default; bfloat16 autocast; torch.compile; the fused SGD kernel; a doubled batch), rounds
alternating, and each as a fraction of this machine's float32 and bfloat16 matrix-multiply
peaks measured in the same run (training FLOPs = 3 x 2 x forward MACs per image). Prints one
JSON document.

``--concurrent``: how a sweep should use the cores. One training with all of them (torch
threads = cores) against as many one-thread trainings at once, each its own process pinned to a
core, all with the ``small`` recipe's default (bfloat16 where native): images/s of the one
against the sum of the many, rounds alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from squeezenet.data.sources import load_dataset, parse_data_spec
from squeezenet.models import create_model
from squeezenet.train.config import cpu_flags, recipe
from squeezenet.train.loop import fit


def bare_loop(model: torch.nn.Module, batch: int, size: int, steps: int, warmup: int) -> float:
    model.train()
    model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    for i in range(warmup + steps):
        if i == warmup:
            started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return batch * steps / (time.perf_counter() - started)


def fit_rate(model: torch.nn.Module, data: str, batch: int, steps: int, warmup: int) -> float:
    spec = parse_data_spec(data)
    train = load_dataset(spec, "train")
    times: list[float] = []
    # float32, like the bare loop it is compared with
    config = recipe("small", epochs=1, batch_size=batch, max_steps=warmup + steps, bf16=False)
    fit(
        model,
        train,
        config,
        preprocess=spec.default_preset,
        callback=lambda e: times.append(time.perf_counter()) if e.kind == "step" else None,
    )
    return batch * steps / (times[-1] - times[warmup - 1])


SETTINGS: dict[str, dict[str, object]] = {  # every field the recipe's default may change is set
    "float32 channels_last": {"bf16": False},
    "bf16 autocast": {"bf16": True},
    "compile": {"compile": True, "bf16": False},
    "compile + bf16": {"compile": True, "bf16": True},
    "fused SGD": {"fused_optimizer": True, "bf16": False},
    "bf16 + fused SGD": {"bf16": True, "fused_optimizer": True},
    "batch 256, LR x2": {"batch_size": 256, "lr": 0.1, "bf16": False},
}


def matrix_flags() -> list[str]:
    """The matrix-unit flags of this CPU (on the AMX Xeon here, bfloat16 matmuls ran 6.8x the
    float32 rate: fit_settings.json's mm peaks)."""
    wanted = {"avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"}
    return sorted(wanted & cpu_flags())


def mm_peak(dtype: torch.dtype, size: int = 2048, seconds: float = 1.0) -> float:
    """GFLOP/s of torch.mm of two size x size matrices of ``dtype`` (best of repeats)."""
    a, b = torch.rand(size, size).to(dtype), torch.rand(size, size).to(dtype)
    torch.mm(a, b)
    best, started = float("inf"), time.perf_counter()
    while time.perf_counter() - started < seconds:
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def settings_rate(
    model_name: str, data: str, setting: dict[str, object], steps: int, warmup: int
) -> float:
    spec = parse_data_spec(data)
    train = load_dataset(spec, "train")
    times: list[float] = []
    config = recipe("small", epochs=1, max_steps=warmup + steps, **setting)  # type: ignore[arg-type]
    fit(
        create_model(model_name, seed=0),
        train,
        config,
        preprocess=spec.default_preset,
        callback=lambda e: times.append(time.perf_counter()) if e.kind == "step" else None,
    )
    return config.batch_size * steps / (times[-1] - times[warmup - 1])


def settings_main(args: argparse.Namespace) -> None:
    from squeezenet.models.summary import summarize

    load_dataset(parse_data_spec(args.data), "train")
    peaks = {"float32": mm_peak(torch.float32), "bfloat16": mm_peak(torch.bfloat16)}
    macs = summarize(create_model(args.model, seed=0), (3, 32, 32)).macs
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, setting in SETTINGS.items():
            rates[name].append(
                settings_rate(args.model, args.data, setting, args.steps, args.warmup)
            )
    rows = []
    base = max(rates["float32 channels_last"])
    for name, values in rates.items():
        best = max(values)
        gflops = 6 * macs * best / 1e9
        rows.append({
            "setting": name, "images_per_s": [round(v, 1) for v in values],
            "best": round(best, 1), "vs_float32": round(best / base, 3),
            "train_gflops": round(gflops, 1),
            "of_float32_peak": round(gflops / peaks["float32"], 3),
            "of_bfloat16_peak": round(gflops / peaks["bfloat16"], 3),
        })  # fmt: skip
    json.dump(
        {
            "benchmark": "fit_settings",
            "data": args.data,
            "model": args.model,
            "steps": args.steps,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_flags": matrix_flags(),
            "mm_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
            "train_flops_per_image": 6 * macs,
            "rows": rows,
        },
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


def default_rate(data: str, model: str, steps: int, warmup: int) -> float:
    """fit's images/s at the ``small`` recipe's default settings, on this process's threads."""
    return settings_rate(model, data, {}, steps, warmup)


def concurrent_rates(args: argparse.Namespace, processes: int) -> list[float]:
    """images/s of each of ``processes`` one-thread trainings run at once, one per core."""
    command = [sys.executable, __file__, "--worker", "--data", args.data, "--model", args.model,
               "--steps", str(args.steps), "--warmup", str(args.warmup)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cores = sorted(os.sched_getaffinity(0))
    workers = [
        subprocess.Popen(["taskset", "-c", str(cores[i % len(cores)]), *command],
                         env=env, stdout=subprocess.PIPE, text=True)
        for i in range(processes)
    ]  # fmt: skip
    outputs = [w.communicate()[0] for w in workers]
    if any(w.returncode for w in workers):
        raise RuntimeError(f"a worker failed: {[w.returncode for w in workers]}")
    return [float(json.loads(o)["images_per_s"]) for o in outputs]


def concurrent_main(args: argparse.Namespace) -> None:
    load_dataset(parse_data_spec(args.data), "train")
    processes = len(os.sched_getaffinity(0))
    one: list[float] = []
    many: list[list[float]] = []
    for _ in range(args.rounds):  # alternate, so a slow patch of the machine hits both
        one.append(default_rate(args.data, args.model, args.steps, args.warmup))
        many.append(concurrent_rates(args, processes))
    best_one, best_many = max(one), max(sum(r) for r in many)
    json.dump(
        {
            "benchmark": "fit_concurrent",
            "data": args.data,
            "model": args.model,
            "steps": args.steps,
            "cores": processes,
            "cpu": platform.processor() or platform.machine(),
            "cpu_flags": matrix_flags(),
            "settings": "small recipe default (bf16 autocast where native), batch 128",
            "one_training_all_threads": [round(v, 1) for v in one],
            "one_thread_trainings_at_once": [[round(v, 1) for v in r] for r in many],
            "sum_over_one": round(best_many / best_one, 3),
        },
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="cifar10")
    parser.add_argument("--model", default="squeezenet_small")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settings", action="store_true", help="compare training settings")
    parser.add_argument(
        "--concurrent", action="store_true",
        help="one all-thread training against one-thread trainings at once, one per core",
    )  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one of --concurrent's trainings
        rate = default_rate(args.data, args.model, args.steps, args.warmup)
        print(json.dumps({"images_per_s": rate, "threads": torch.get_num_threads()}))
        return
    if args.settings:
        settings_main(args)
        return
    if args.concurrent:
        concurrent_main(args)
        return
    load_dataset(parse_data_spec(args.data), "train")  # decode (and cache) before timing
    rates: dict[str, list[float]] = {"bare": [], "fit": []}
    for _ in range(args.rounds):  # alternate, so a slow patch of the machine hits both
        for name in ("bare", "fit"):
            model = create_model(args.model, seed=0)
            if name == "bare":
                rate = bare_loop(model, args.batch_size, 32, args.steps, args.warmup)
            else:
                rate = fit_rate(model, args.data, args.batch_size, args.steps, args.warmup)
            rates[name].append(rate)
    best = {name: max(values) for name, values in rates.items()}
    json.dump(
        {
            "benchmark": "fit_throughput",
            "data": args.data,
            "model": args.model,
            "batch_size": args.batch_size,
            "layout": "channels_last",
            "steps": args.steps,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "images_per_s": {k: [round(v, 1) for v in values] for k, values in rates.items()},
            "fit_over_bare": round(best["fit"] / best["bare"], 3),
        },
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
