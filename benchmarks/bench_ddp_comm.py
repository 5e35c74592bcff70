"""The paper's distributed-training argument, measured: gradient bytes and communication time
of 2-process DistributedDataParallel (gloo, CPU) for SqueezeNet v1.0, v1.1, the small model and
AlexNet, on the same input size and batch.

SqueezeNet Sec. 1: "more efficient distributed training", because data-parallel workers
exchange every gradient each step. For each model, in one torchrun run:

* gradient bytes all-reduced per step: 4 x trainable parameters, checked against the sizes of
  the buckets DDP actually all-reduced (a communication hook records them);
* step time with gradient synchronisation and under ``no_sync()`` (the same step without it),
  and the share of the synced step that the communication costs;
* the bytes each worker sends per step with ring all-reduce, ``2 (N - 1) / N x gradient bytes``,
  projected for N workers.

    python benchmarks/bench_ddp_comm.py --out benchmarks/results/ddp_comm.json
(it starts ``torchrun --nproc-per-node 2`` on itself; one thread per process). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

MODELS = ("squeezenet1_0", "squeezenet1_1", "squeezenet_small", "alexnet")
WORKERS = (2, 8, 32, 128)


def main() -> None:
    args = _parse()
    if "RANK" not in os.environ:
        _launch(args)
        return
    _worker(args)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8, help="images per process per step")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per mode")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    return parser.parse_args()


def _launch(args: argparse.Namespace) -> None:
    """Run this script under torchrun with 2 processes; rank 0 prints the JSON."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-port", "29533", __file__, *sys.argv[1:],
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench_ddp_comm: torchrun failed:\n{done.stderr[-4000:]}")
    document = done.stdout[done.stdout.index("{") :]
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(document)
    print(document, end="")


def _worker(args: argparse.Namespace) -> None:
    import torch
    import torch.distributed as dist

    from squeezenet.experiments.provenance import command_line, machine

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rows = [_measure(name, args) for name in args.models.split(",")]
    if dist.get_rank() == 0:
        by = {r["model"]: r for r in rows}
        ratio = None
        if "alexnet" in by and "squeezenet1_0" in by:
            ratio = {
                "parameters": by["alexnet"]["parameters"] / by["squeezenet1_0"]["parameters"],
                "comm_seconds": by["alexnet"]["comm_s"] / max(by["squeezenet1_0"]["comm_s"], 1e-9),
                "paper_parameters": 50,
            }
        document = {
            "command": command_line(sys.argv),
            "machine": machine(),
            "backend": "gloo",
            "world_size": dist.get_world_size(),
            "threads_per_process": 1,
            "input_size": args.input_size,
            "batch_per_process": args.batch,
            "rows": rows,
            "alexnet_over_squeezenet1_0": ratio,
        }
        print(json.dumps(document, indent=2))
    dist.destroy_process_group()


def _measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel

    from squeezenet.models import create_model

    model = create_model(name, seed=0, num_classes=1000)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ddp = DistributedDataParallel(model)
    buckets: list[int] = []

    def hook(state: Any, bucket: Any) -> Any:
        buckets.append(bucket.buffer().numel())
        return allreduce_hook(state, bucket)

    # DDP checks the annotation object itself; this module's annotations are strings.
    hook.__annotations__ = {
        "state": object,
        "bucket": dist.GradBucket,
        "return": torch.futures.Future[torch.Tensor],
    }

    ddp.register_comm_hook(None, hook)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=1e-4, momentum=0.9)
    generator = torch.Generator().manual_seed(dist.get_rank())
    x = torch.rand(args.batch, 3, args.input_size, args.input_size, generator=generator)
    y = torch.randint(0, 1000, (args.batch,), generator=generator)
    loss_fn = nn.CrossEntropyLoss()

    def step(sync: bool) -> float:
        dist.barrier()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if sync:
            loss_fn(ddp(x), y).backward()
        else:
            with ddp.no_sync():
                loss_fn(ddp(x), y).backward()
        optimizer.step()
        return time.perf_counter() - start

    step(True)  # warm-up; the first synced step also builds DDP's buckets
    buckets.clear()
    step(True)
    bucket_elements = sum(buckets)
    synced, local = [], []
    for _ in range(args.steps):  # alternate, so drift hits both modes alike
        synced.append(step(True))
        local.append(step(False))
    times = torch.tensor([statistics.median(synced), statistics.median(local)])
    dist.all_reduce(times)  # the two ranks' medians, averaged
    synced_s, local_s = (times / dist.get_world_size()).tolist()
    grad_bytes = 4 * params
    return {
        "model": name,
        "parameters": params,
        "gradient_bytes_per_step": grad_bytes,
        "ddp_bucket_bytes_per_step": 4 * bucket_elements,
        "buckets": len(buckets),
        "step_s_synced": round(synced_s, 4),
        "step_s_no_sync": round(local_s, 4),
        "comm_s": round(max(synced_s - local_s, 0.0), 4),
        "comm_share": round(max(synced_s - local_s, 0.0) / synced_s, 4),
        "ring_bytes_sent_per_worker": {
            str(n): round(2 * (n - 1) / n * grad_bytes) for n in WORKERS
        },
    }


if __name__ == "__main__":
    main()
