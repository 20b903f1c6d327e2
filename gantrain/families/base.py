"""The contract between a method family and the one training loop (gantrain/trainer.py).

A family owns named networks and says, through ``phases(d_steps)``, what one training step updates. For each
``Phase`` the trainer runs ``repeats`` optimizer updates; each update calls ``loss(phase.name, batch, step)``
on ``trainer.accumulate`` micro-batches (fresh ones, or ``{}`` when the phase ``takes_batch`` is false), steps
the phase's optimizer over the parameters of ``phase.networks`` and calls ``after_update(phase.name, step)``.
After every phase of a step the EMA copy of ``sample_network`` (if any) is updated once.

Batches are dicts of named fields (``DataSpec.fields``): tensors arrive on the family's device, anything else
(captions) as the data source made it. Previews and metrics are made from ``fixed_inputs(n, generator,
heldout)``, where ``heldout`` is a fixed batch of n held-out samples, so a family conditioned on an image, a
map or a label shows and is scored on held-out conditions.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Union

import torch
import torch.distributed as dist
from torch import nn

from gantrain.visualize import Grid

Tensor = torch.Tensor


@dataclass(frozen=True)
class Phase:
    """One kind of update in a training step: the optimizer ``name`` steps the parameters of ``networks``,
    ``repeats`` times a step, each time on a fresh batch unless ``takes_batch`` is false. Optimizer settings
    for it come from ``optimizer.per_phase.<name>`` (configs/optimizer/)."""

    name: str
    networks: tuple[str, ...]
    repeats: int = 1
    takes_batch: bool = True


class Family(nn.Module):
    """A kind of method: its named networks, the phases of one training step, and how it samples.

    ``loss`` returns the scalar to minimize and a dict of named detached scalars to log. ``sample_network``
    names the network that EMA averages and sampling uses. ``roles`` groups networks by what they do
    (``{"generator": ("generator",), "discriminator": ("discriminator",)}``), so regularizers find them
    without knowing a family's names.
    """

    sample_network: str
    roles: dict[str, tuple[str, ...]] = {}
    round_trips: bool = False  # whether ``round_trip`` translates back (CycleGAN, StarGAN)

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.networks = nn.ModuleDict()

    def phases(self, d_steps: int) -> list[Phase]:
        raise NotImplementedError

    def phase(self, name: str, d_steps: int = 1) -> Phase:
        return next(p for p in self.phases(d_steps) if p.name == name)

    def parameters_of(self, phase: Phase) -> Iterator[nn.Parameter]:
        """The parameters ``phase`` updates: those of its networks, each once."""
        seen: set[int] = set()
        for name in phase.networks:
            for p in self.networks[name].parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p

    def with_role(self, role: str) -> list[nn.Module]:
        return [self.networks[name] for name in self.roles.get(role, ())]

    def role_map(self) -> dict[str, list[nn.Module]]:
        """Every role's networks: what regularizers are given."""
        return {role: self.with_role(role) for role in self.roles}

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def after_update(self, phase: str, step: int) -> None:
        pass

    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        """Inputs for n preview or metric samples, drawn once from ``generator`` (on the CPU); ``heldout`` is a
        batch of n held-out samples (on the CPU), which families conditioned on data need."""
        raise NotImplementedError

    def sampling_network(self, network: Optional[nn.Module] = None) -> nn.Module:
        """``network`` (e.g. the EMA copy) if given, else the sampling network itself."""
        return network if network is not None else self.networks[self.sample_network]

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        """Samples from ``inputs``, using ``network`` (e.g. the EMA copy) in place of the sampling network."""
        raise NotImplementedError

    def targets(self, inputs: dict, heldout: Optional[dict] = None) -> dict:
        """What the samples generated from ``inputs`` should be, for the paired metrics (gantrain/metrics/paired.py):
        ``image``, the ground truth of each sample (a translation's held-out target); ``mask``, where it counts
        (an inpainting hole; else everywhere); ``label``, the class each sample should show (a conditional
        model's class, a translation's preserved class or target domain). None of them by default."""
        return {}

    def round_trip(self, inputs: dict, network: Optional[nn.Module] = None) -> tuple[Tensor, Tensor]:
        """For translators that can go back (``round_trips``): each input image and its reconstruction after the
        translation there and back (CycleGAN's G_BA(G_AB(a)), StarGAN's G(G(x, c_trg), c_org)), from which the
        evaluator reports the held-out ``L1/round_trip``."""
        raise NotImplementedError(f"{self.name} does not translate back")

    def previews(self, network: nn.Module, inputs: dict, heldout: dict) -> dict[str, Union[Grid, Tensor]]:
        """Extra named previews beside the samples (reconstructions, input | output | target groups, …), each a
        labelled ``Grid`` (gantrain/visualize.py) or N images for a square grid; none by default. ``network`` is
        the sampling network (EMA copy if any) in eval mode, ``heldout`` the batch the ``inputs`` were made
        from, on the family's device."""
        return {}

    def sample_preview(self, samples: Tensor, inputs: dict) -> Union[Grid, Tensor]:
        """How the samples from ``inputs`` are shown: one labelled column per class when the inputs carry labels
        (``arange(n) % classes``, as conditional families draw them), else the samples themselves (a square grid
        of images, or a scatter plot of points)."""
        labels = inputs.get("label")
        if not isinstance(labels, Tensor) or samples.dim() != 4:
            return samples
        columns = int(labels.max()) + 1
        return Grid.of(samples, columns, [f"class {c}" for c in labels[:columns].tolist()])

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


@contextmanager
def frozen(module: nn.Module, keep: Iterable[nn.Parameter] = ()):
    """Build the graph without weight gradients for ``module`` (its inputs still get theirs), except for the
    parameters in ``keep`` (e.g. InfoGAN's Q head, which the generator's phase updates)."""
    flags = [p.requires_grad for p in module.parameters()]
    kept = {id(p) for p in keep}
    for p in module.parameters():
        p.requires_grad_(p.requires_grad and id(p) in kept)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def local_rows(draw: Callable[[int], Tensor], n: int) -> Tensor:
    """``draw(n)``, n random rows for this process's n samples. In a distributed run of k ranks (which keep the same
    random generator states) every rank makes the draw of the whole global batch, k·n rows, and keeps its own n:
    the ranks get different noise, and k ranks × n rows are exactly one process's draw for k·n rows."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return draw(n)
    k, r = dist.get_world_size(), dist.get_rank()
    return draw(k * n)[r * n : (r + 1) * n]
