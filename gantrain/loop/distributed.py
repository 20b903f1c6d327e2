"""Data-parallel training over the processes ``torchrun`` starts (one per device, on one machine or many).

Every rank holds the same networks and draws the same random numbers; each trains on its own rows of every global
batch (``BatchStream``'s shard, ``families.base.local_rows`` for noise), and before every optimizer step the
phase's gradients are averaged over the ranks (``average_gradients``): one all-reduce per update, after the
micro-batches, so ``frozen()``, networks shared by several phases and k discriminator steps work as on one process,
and k ranks × B/k rows update the weights as one process × B rows (within float rounding). Rank 0 alone writes
(TensorBoard, previews, metrics, checkpoints); decisions that end or skip work (a NaN loss, a stop signal) are
agreed over all ranks, so none waits forever in a collective. Outside ``torchrun`` (no ``WORLD_SIZE``) every
function here is the one-process case and calls no collective.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist
from torch.utils.tensorboard import SummaryWriter

from gantrain.errors import ConfigError

# how long a collective waits for the other ranks before this one stops with LostRank (seconds)
TIMEOUT_ENV = "GANTRAIN_DIST_TIMEOUT"


class LostRank(RuntimeError):
    """A collective failed or timed out: another rank died, hangs or cannot be reached."""


def launched() -> bool:
    """Started by ``torchrun`` (or another launcher that sets ``WORLD_SIZE``) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank: from the process group, else from the launcher's ``RANK`` (before the group exists)."""
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def local_device() -> Optional[torch.device]:
    """The GPU of this rank (``LOCAL_RANK`` on its machine) when CUDA is present, else None."""
    if not torch.cuda.is_available():
        return None
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def start() -> None:
    """Join the process group ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``): NCCL for
    CUDA tensors and gloo for CPU ones, each rank on its own GPU; a collective waits at most
    ``$GANTRAIN_DIST_TIMEOUT`` seconds (default 1800: rank 0's evaluation may take minutes while the others wait) for the others."""
    if not launched() or dist.is_initialized():
        return
    device = local_device()
    if device is not None:
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "1800")))
    dist.init_process_group("cpu:gloo,cuda:nccl" if device is not None else "gloo", timeout=timeout, device_id=device)


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def checked_device(settings, device: torch.device) -> torch.device:
    """The device of this rank (its own GPU under torchrun) after the checks a run on several processes needs."""
    world = world_size()
    if settings.batch_size % world:
        raise ConfigError(
            f"trainer.batch_size={settings.batch_size} is the global batch and must split evenly over the {world} processes: "
            f"use a multiple of {world}"
        )
    if device.type == "cuda":
        return local_device()
    if settings.sync_batchnorm:
        raise ConfigError(f"trainer.sync_batchnorm=true needs CUDA GPUs (torch's SyncBatchNorm), but this run is on {device.type}")
    if device.type != "cpu":
        raise ConfigError(f"torchrun with trainer.device={settings.device}: use CUDA GPUs (NCCL) or the CPU (gloo)")
    return device


def _collective(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``; a failure of the group (a rank died, a timeout) becomes one ``LostRank``."""
    try:
        return fn(*args, **kwargs)
    except (RuntimeError, ValueError) as err:
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]  # without gloo's source location and advice
        raise LostRank(
            f"rank {rank()} of {world_size()} lost contact with the others ({first[:160]}): another process of the run died or hangs"
        ) from None


def agree(value: int, op: str = "max") -> int:
    """``value`` combined over every rank (``max`` or ``min``): the decision all of them take."""
    if not active():
        return value
    flag = torch.tensor([int(value)], dtype=torch.int64)
    _collective(dist.all_reduce, flag, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.MIN)
    return int(flag.item())


def average_gradients(params) -> None:
    """Replace each gradient by its mean over the ranks (one flat all-reduce per dtype). A parameter without a
    gradient on every rank keeps none; one with a gradient on some rank gets the mean with zeros elsewhere."""
    if not active():
        return
    params = list(params)
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.int64)
    _collective(dist.all_reduce, has, op=dist.ReduceOp.MAX)
    for p, flag in zip(params, has.tolist()):
        if flag and p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p, flag in zip(params, has.tolist()) if flag]
    for dtype in sorted({g.dtype for g in grads}, key=str):
        group = [g for g in grads if g.dtype == dtype]
        flat = torch.cat([g.reshape(-1) for g in group])
        _collective(dist.all_reduce, flat)
        flat /= world_size()
        offset = 0
        for g in group:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each logged number averaged over the ranks (every rank logs the same keys at the same steps)."""
    if not active() or not values:
        return values
    keys = sorted(values)
    flat = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    _collective(dist.all_reduce, flat)
    return {**values, **{k: v / world_size() for k, v in zip(keys, flat.tolist())}}


def gather(obj: Any) -> list:
    """Every rank's ``obj``, in rank order (``[obj]`` on one process)."""
    if not active():
        return [obj]
    out: list = [None] * world_size()
    _collective(dist.all_gather_object, out, obj)
    return out


def from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not active():
        return obj
    box = [obj]
    _collective(dist.broadcast_object_list, box, src=0)
    return box[0]


def barrier() -> None:
    if active():
        _collective(dist.barrier)


def broadcast_module(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers copied into every rank's ``module``."""
    if not active():
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            _collective(dist.broadcast, tensor, src=0)


class _NoWriter:
    """What ranks other than 0 log to: nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def summary_writer(run_dir, purge_step: Optional[int] = None):
    """TensorBoard's writer on rank 0; a writer that writes nothing on the other ranks."""
    return SummaryWriter(str(run_dir), purge_step=purge_step) if is_main() else _NoWriter()
