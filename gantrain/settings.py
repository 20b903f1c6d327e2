"""The training loop's settings, each declared once: its default, its type, its one-line check and its meaning.

``TrainerSettings`` is the ``trainer:`` block of every composed config: Hydra gets its defaults from here
(``trainer_defaults`` in Hydra's config store, placed first in configs/train.yaml's defaults list, so group
options and the command line override them), and ``TrainerSettings.from_config`` checks the composed values.
A new setting is one field below.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from gantrain.errors import ConfigError
from gantrain.validate import is_number, is_positive_int

NAN_POLICIES = ("stop", "skip")
AMP_DTYPES = ("bfloat16", "float16")


def _positive_int(key: str, value: Any) -> None:
    if not is_positive_int(value):
        raise ConfigError(f"trainer.{key}={value!r} must be a positive integer")


def _fraction(key: str, value: Any) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"trainer.{key}={value} is a fraction of trainer.steps: use a value in [0, 1] (1 = no decay)")


CHECKS = {
    "steps": _positive_int,
    "d_steps": _positive_int,
    "batch_size": _positive_int,
    "accumulate": _positive_int,
    "log_every": _positive_int,
    "sample_every": _positive_int,
    "checkpoint_every": _positive_int,
    "num_samples": _positive_int,
    "lr_decay_start": _fraction,
}


@dataclass(frozen=True)
class TrainerSettings:
    steps: int = 1500  # training steps; each runs every phase (k discriminator updates + one generator update)
    d_steps: int = 1  # k, discriminator updates per generator update
    batch_size: int = 64  # samples per micro-batch
    accumulate: int = 1  # micro-batches per optimizer update: an update sees batch_size × accumulate samples
    device: str = "auto"  # auto = cuda when present, else cpu
    amp: bool = False  # mixed precision (CUDA; bfloat16 also runs on the CPU when a Trainer is built directly)
    amp_dtype: str = "bfloat16"  # or float16 (with loss scaling)
    ema: float = 0.0  # EMA decay of the sampling network's weights (0 = off), e.g. 0.999
    ema_start: int = 0  # the EMA copies the network until this many steps have passed, then averages (BigGAN)
    lr_decay_start: float = 1.0  # from this fraction of steps, every learning rate decays linearly (1.0 = constant)
    lr_decay_final: float = 0.0  # ... to this factor of its value at the last step
    grad_clip: float = 0.0  # > 0: clip each update's global gradient norm to this (DDPM: 1.0)
    nan_policy: str = "stop"  # a NaN/Inf loss: stop (name the step, keep the last good checkpoint) | skip the update
    log_every: int = 50  # log the losses, gradient norms, learning rates and images/s every this many steps (and the first)
    sample_every: int = 250  # save previews (samples/*.png, TensorBoard) every this many steps and at the end
    checkpoint_every: int = 500  # write checkpoints/last.pt every this many steps and at the end
    eval_every: int = 500  # compute eval's metrics every this many steps and at the end (0 = off)
    num_samples: int = 64  # preview samples (train.yaml: the dataset's preview_samples), from as many held-out rows
    num_workers: int = 0  # data-loader worker processes (for image folders)
    sync_batchnorm: bool = False  # under torchrun on GPUs: batch norm statistics over the global batch (SyncBatchNorm)

    def __post_init__(self):
        for f in fields(self):  # the declared type first: a number is a number, a flag a flag
            value = getattr(self, f.name)
            if f.type == "float" and not is_number(value):
                raise ConfigError(f"trainer.{f.name}={value!r} must be a number (the default is {f.default})")
            if f.type in ("bool", "str") and type(value).__name__ != f.type:
                raise ConfigError(f"trainer.{f.name}={value!r} must be {'true or false' if f.type == 'bool' else 'a name'}")
        for key, check in CHECKS.items():
            check(key, getattr(self, key))
        if not isinstance(self.ema_start, int) or self.ema_start < 0:
            raise ConfigError(f"trainer.ema_start={self.ema_start!r} must be a non-negative integer (steps before the EMA averages)")
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ConfigError(f"trainer.eval_every={self.eval_every!r} must be a non-negative integer (0 = no evaluation)")
        if not 0.0 <= float(self.ema) < 1.0:
            raise ConfigError(f"trainer.ema={self.ema} is an EMA decay: use 0 (off) or a value in (0, 1) such as 0.999")
        if not float(self.lr_decay_final) >= 0.0:
            raise ConfigError(f"trainer.lr_decay_final={self.lr_decay_final} is a learning-rate factor: use 0 or more")
        if not float(self.grad_clip) >= 0.0:
            raise ConfigError(f"trainer.grad_clip={self.grad_clip} is a maximum gradient norm: use 0 (off) or more")
        if self.nan_policy not in NAN_POLICIES:
            raise ConfigError(f"trainer.nan_policy={self.nan_policy!r}: use stop (end the run) or skip (skip the update)")
        if self.amp_dtype not in AMP_DTYPES:
            raise ConfigError(f"trainer.amp_dtype={self.amp_dtype!r}: use bfloat16 or float16")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ConfigError(f"trainer.num_workers={self.num_workers!r} must be 0 (load in the main process) or more")

    @classmethod
    def from_config(cls, node) -> "TrainerSettings":
        """The checked settings of a composed ``trainer:`` node (resolved); an unknown key is refused."""
        values = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"trainer.{unknown[0]} is not a trainer setting; known: {', '.join(sorted(known))}")
        return cls(**values)


ConfigStore.instance().store(name="trainer_defaults", node={"trainer": {f.name: f.default for f in fields(TrainerSettings)}})
