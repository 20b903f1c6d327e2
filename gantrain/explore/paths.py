"""Paths between latents: linear interpolation and spherical linear interpolation (slerp, Shoemake 1985; for
GAN latents White 2016, "Sampling Generative Networks"), and how evenly a path moves in a feature space."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def lerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    """(1 − t) a + t b, row by row (a, b: (N, …); t: a number or (T,) → (T, N, …))."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.dim() == 0:
        return torch.lerp(a, b, t)
    return torch.lerp(a.unsqueeze(0), b.unsqueeze(0), t.view(-1, *([1] * a.dim())))


def slerp(a: Tensor, b: Tensor, t: Tensor | float, eps: float = 1e-6) -> Tensor:
    """sin((1 − t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b, Ω the angle between each row of a and of b (flattened); rows
    whose endpoints are (near-)parallel (sin Ω < ``eps``) fall back to ``lerp``. Shapes as in ``lerp``."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    scalar = t.dim() == 0
    t = t.reshape(-1, *([1] * a.dim()))
    fa, fb = a.flatten(1), b.flatten(1)
    cos = (fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1)).clamp_min(1e-30)
    omega = torch.arccos(cos.clamp(-1, 1)).view(-1, *([1] * (a.dim() - 1)))
    sin = torch.sin(omega)
    parallel = sin < eps
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / safe
    out = torch.where(parallel, torch.lerp(a.unsqueeze(0), b.unsqueeze(0), t), spherical)
    return out[0] if scalar else out


def interpolate(latents: Tensor, steps: int, mode: str) -> Tensor:
    """The path through ``latents`` (K, …) in order, ``steps`` points per segment (endpoints included):
    (K − 1, steps, …), by ``lerp`` or ``slerp``."""
    if mode not in ("lerp", "slerp"):
        raise ValueError(f"mode={mode!r}: choose lerp or slerp")
    t = torch.linspace(0, 1, steps, dtype=latents.dtype)
    fn = lerp if mode == "lerp" else slerp
    return fn(latents[:-1], latents[1:], t).transpose(0, 1)


def step_ratio(features: Tensor) -> Tensor:
    """The largest step over the mean step of each path (P, T, D) in a feature space: 1 for a path that moves at
    an even pace, large where it jumps. (P,)"""
    steps = (features[:, 1:] - features[:, :-1]).flatten(2).norm(dim=2)
    return steps.max(dim=1).values / steps.mean(dim=1).clamp_min(1e-12)
