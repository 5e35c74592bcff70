"""The torchrun set-up: join the process group that ``torchrun`` describes in the environment.

``torchrun`` starts one process per rank with ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set;
:func:`fit` then trains with DistributedDataParallel once the group exists (gloo on CPU, nccl on
GPU). A plain ``python -m squeezenet train`` has no ``WORLD_SIZE`` and stays a single process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed() -> tuple[int, str]:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1.

    Returns:
        This process's rank (0 without torchrun) and its default device: ``cuda:LOCAL_RANK``
        under torchrun with GPUs, ``cuda`` or ``cpu`` for a single process.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, "cuda" if torch.cuda.is_available() else "cpu"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return dist.get_rank(), f"cuda:{local_rank}"
    dist.init_process_group("gloo")
    return dist.get_rank(), "cpu"
