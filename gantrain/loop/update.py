"""Optimizer updates: one optimizer, gradient scaler and learning-rate schedule per phase, gradient accumulation
over micro-batches, mixed precision, clipping and the gradient norm. The one place a distributed run changes
how gradients become an update."""

from __future__ import annotations

from typing import Optional

import torch

from gantrain.loop import distributed
from gantrain.settings import TrainerSettings

Tensor = torch.Tensor


def linear_decay(steps: int, start: float, final: float):
    """The learning-rate factor of ``LambdaLR`` after n steps: 1 until ``start`` × ``steps``, then linear down to
    ``final`` at ``steps`` (e.g. start 0.5, final 0: constant for the first half, then annealed to zero).
    start = 1 keeps the learning rate constant."""
    first = start * steps

    def factor(n: int) -> float:
        if n <= first or steps <= first:
            return 1.0
        return 1.0 + (final - 1.0) * min(1.0, (n - first) / (steps - first))

    return factor


class Updater:
    """Turns each phase's losses into updates of its optimizer.

    An update is ``begin(phase)``, then ``backward(phase, loss)`` for each of ``accumulate`` micro-batches (the
    gradients of their mean loss), then ``step(phase, measure)``, which clips the global gradient norm at
    ``grad_clip`` (> 0) and returns that norm, measured before clipping, when ``measure`` is true (else None).
    In a distributed run the gradients are first averaged over the ranks (gantrain/loop/distributed.py).
    ``amp`` runs the losses under autocast in ``amp_dtype``; float16 scales the loss (GradScaler). Every
    optimizer's learning rate follows ``linear_decay(steps, lr_decay_start, lr_decay_final)``, stepped once per
    training step by ``end_of_step``. The settings are the trainer's (gantrain/settings.py).
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], device: torch.device, settings: TrainerSettings):
        self.optimizers, self.device = optimizers, device
        self.accumulate, self.grad_clip = settings.accumulate, float(settings.grad_clip)
        self.amp, self.amp_dtype = settings.amp, getattr(torch, settings.amp_dtype)
        decay = linear_decay(settings.steps, float(settings.lr_decay_start), float(settings.lr_decay_final))
        self.schedulers = {p: torch.optim.lr_scheduler.LambdaLR(o, decay) for p, o in optimizers.items()}
        self.scalers = {p: torch.amp.GradScaler(device.type, enabled=self.amp and self.amp_dtype == torch.float16) for p in optimizers}

    def autocast(self):
        """The context the losses are computed in."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def begin(self, phase: str) -> None:
        self.optimizers[phase].zero_grad(set_to_none=True)

    def backward(self, phase: str, loss: Tensor) -> None:
        self.scalers[phase].scale(loss / self.accumulate).backward()

    def step(self, phase: str, measure: bool = False) -> Optional[Tensor]:
        optimizer, scaler = self.optimizers[phase], self.scalers[phase]
        distributed.average_gradients(p for group in optimizer.param_groups for p in group["params"])
        norm = None
        if measure or self.grad_clip:
            scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            # the norm before clipping (Ho et al. 2020 clip every network's global norm at 1)
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip or float("inf")).detach()
        scaler.step(optimizer)
        scaler.update()
        return norm if measure else None

    def end_of_step(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step()

    def learning_rates(self) -> dict[str, float]:
        return {f"lr/{p}": o.param_groups[0]["lr"] for p, o in self.optimizers.items()}

    def state_dict(self) -> dict:
        return {
            name: {p: x.state_dict() for p, x in group.items()}
            for name, group in (("optimizers", self.optimizers), ("scalers", self.scalers), ("schedulers", self.schedulers))
        }

    def load_state_dict(self, state: dict) -> None:
        for name, group in (("optimizers", self.optimizers), ("scalers", self.scalers), ("schedulers", self.schedulers)):
            for p, x in group.items():
                x.load_state_dict(state[name][p])


def ema_with_warmup(decay: float, start: int = 0):
    """EMA update with the decay min(decay, (1 + n) / (10 + n)) after n updates (the warm-up of TensorFlow's
    ExponentialMovingAverage with num_updates), so early averages do not cling to the initial weights.
    ``start`` > 0 (BigGAN's ``ema_start``): the average is a copy of the network for its first ``start`` updates,
    and the warm-up counts n from there. Computed on the device: no host sync per update."""

    def average(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = num_averaged.float() - start
        weight = torch.where(n < 0, 1.0, 1.0 - torch.clamp((1.0 + n) / (10.0 + n), max=decay))
        for a, c in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(c, weight.to(a.dtype))
            else:  # integer buffers (batch-norm counters) follow the network
                a.copy_(c)

    return average
