"""Checkpoints: written atomically, read with ``weights_only=True`` so no pickled code ever runs."""

from __future__ import annotations

import os
import pickle
import random
import re
import shutil
from pathlib import Path
from typing import Iterable, Mapping, Optional

import numpy as np
import torch
from torch import nn

from gantrain.errors import ConfigError


class WriteError(OSError):
    """A checkpoint that could not be written (a full disk, a lost mount): one line for the CLI, exit code 1."""

    def __str__(self) -> str:  # the sentence alone, without OSError's "[Errno 28]"
        return str(self.strerror)


class _Sink:
    """What ``torch.save`` writes to: ``file`` (None: nowhere), counting the bytes and keeping the first
    ``OSError`` (torch may report a failed write later as a RuntimeError of its own)."""

    def __init__(self, file=None):
        self.file, self.size, self.error = file, 0, None

    def write(self, data) -> int:
        try:
            n = len(data) if self.file is None else self.file.write(data)
        except OSError as err:
            self.error = self.error or err
            raise
        self.size += n
        return n

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def save(state: dict, path: Path, temporary: Optional[str] = None, what: str = "the checkpoint", advice: str = "free some space") -> None:
    """Write ``state`` to a temporary file beside ``path`` (``temporary``: its name; ``path.name + ".tmp"`` by
    default), flush it to disk, rename it over ``path`` and flush the folder entry: a crash at any moment leaves
    the old file or the new one, never a torn one.

    A write that fails (``OSError``: a full disk …) or is interrupted removes the temporary file and leaves
    ``path`` as it was; the ``OSError`` becomes one ``WriteError`` line naming ``what`` and its folder, the size
    needed and ``advice``.
    """
    path = Path(path)
    tmp = path.with_name(temporary or path.name + ".tmp")
    sink = _Sink()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            sink.file = f
            torch.save(state, sink)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        err = sink.error or err
        if not isinstance(err, OSError):
            raise
        counter = _Sink()
        torch.save(state, counter)
        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
        reason = err.strerror or type(err).__name__
        kept = f" (the previous {path.name} is kept)" if path.exists() else ""
        raise WriteError(
            err.errno,
            f"cannot write {what} {path.name} into {path.parent} ({reason}){kept}: it needs {_megabytes(counter.size)}, "
            f"{_megabytes(free)} are free there; {advice}",
        ) from None
    if os.name == "posix":  # make the rename itself durable (a power cut after it keeps the new file)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def load(path: Path, map_location="cpu", required: Iterable[str] = ()) -> dict:
    """Read a checkpoint of plain tensors and containers; refuse anything else in one sentence.

    A file that carries pickled Python objects (code that would run on unpickling) is refused before
    any of it runs: ``torch.load(weights_only=True)`` only rebuilds tensors, numbers, strings and
    containers. A damaged file (torn, random bytes) is refused as such. ``required`` lists keys the file
    must have (e.g. a training checkpoint's).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        # weights_only names the class a real pickle payload would build ("GLOBAL builtins.open"); any other
        # failure (an unknown opcode in random bytes, a torn zip) is a damaged file
        found = re.search(r"GLOBAL (\S+)", str(err)) if isinstance(err, pickle.UnpicklingError) else None
        if found:
            raise ConfigError(
                f"{str(path)!r} holds the Python object {found.group(1)}, not only tensors: refused unread (nothing in it ran); "
                f"load only checkpoints written by gantrain, or re-save trusted weights as a plain state dict"
            ) from None
        raise ConfigError(
            f"{str(path)!r} is truncated or not a checkpoint (a damaged file: {type(err).__name__}); "
            f"use another checkpoint or start a new run"
        ) from None
    missing = [k for k in required if not isinstance(state, dict) or k not in state]
    if missing:
        raise ConfigError(f"{str(path)!r} is not a gantrain training checkpoint (it lacks {', '.join(missing)})")
    return state


def check_compatible(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse in one sentence a state dict written by other networks than ``module``'s (``source`` names it)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    reshaped = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if reshaped:
        k = reshaped[0]
        problems.append(f"{len(reshaped)} of another shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
    if problems:
        raise ConfigError(
            f"{source} holds the weights of other networks ({'; '.join(problems)} parameters): "
            f"it was written by another model or architecture; use a checkpoint of this one"
        )


def restore(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``module.load_state_dict(state)`` after ``check_compatible``."""
    check_compatible(module, state, source)
    module.load_state_dict(state)


def rng_state() -> dict:
    """The Python, NumPy, torch CPU and CUDA generator states, as tensors and plain numbers."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "python": [version, list(internal), gauss_next],
        "numpy": [torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def forked_rng(device: torch.device):
    """A context after which the CPU generator (and the device's, on CUDA) is as it was before: work done
    inside (previews, metrics, a classifier's training) never shifts the training's random streams."""
    return torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else [])


def set_rng_state(state: dict) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
