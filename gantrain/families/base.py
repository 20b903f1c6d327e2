"""The contract between a method family and the one training loop (gantrain/trainer.py)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import nn

Tensor = torch.Tensor


class Family(nn.Module):
    """A kind of method: its named networks, the phases of one training step, and how it samples.

    For each ``(phase, repeats)`` of ``phases(d_steps)`` the trainer runs ``repeats`` updates, each on a
    fresh batch: ``loss(phase, batch, step)`` → an optimizer step on ``parameters_of(phase)`` →
    ``after_update(phase, step)``. ``loss`` returns the scalar to minimize and a dict of named detached
    scalars to log. ``sample_network`` names the network that EMA averages and sampling uses.
    """

    sample_network: str

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.networks = nn.ModuleDict()

    def phases(self, d_steps: int) -> list[tuple[str, int]]:
        raise NotImplementedError

    def parameters_of(self, phase: str) -> Iterator[nn.Parameter]:
        return self.networks[phase].parameters()

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def after_update(self, phase: str, step: int) -> None:
        pass

    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """Inputs for preview and metric samples, drawn once from ``generator`` (on the CPU)."""
        raise NotImplementedError

    def generate(self, inputs: dict[str, Tensor], network: Optional[nn.Module] = None) -> Tensor:
        """Samples from ``inputs``, using ``network`` (e.g. the EMA copy) in place of the sampling network."""
        raise NotImplementedError

    def previews(self, network: nn.Module, inputs: dict[str, Tensor], real: Tensor) -> dict[str, Tensor]:
        """Extra named previews beside the samples (e.g. reconstructions, truncation sweeps); none by default.

        ``network`` is the sampling network (EMA copy if any) in eval mode, ``real`` a held-out batch."""
        return {}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


@contextmanager
def frozen(module: nn.Module):
    """Build the graph without weight gradients for ``module`` (its inputs still get theirs)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)
