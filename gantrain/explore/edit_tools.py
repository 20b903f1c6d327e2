"""The editing tools: vector arithmetic on group means (Radford et al. 2016, DCGAN §6.3), attribute directions
(InterFaceGAN, Shen et al. 2020, §2.2) and their decoupling by orthogonal projection (§2.3). Each takes a
``Context`` and returns what it measured."""

from __future__ import annotations

from typing import Sequence

import torch

from gantrain.errors import ConfigError
from gantrain.explore.context import Context
from gantrain.explore.directions import decouple as project_out
from gantrain.explore.directions import edit, fit_direction, slope

Tensor = torch.Tensor


def combine(latents: Sequence[Tensor], signs: Sequence[float]) -> Tensor:
    """Σ signᵢ · latentᵢ (e.g. z_a − z_b + z_c)."""
    return sum(s * z for s, z in zip(signs, latents))


def _names(ctx: Context, *attributes: str) -> list[str]:
    names = list(dict.fromkeys([*attributes, *ctx.settings.measure]))
    for n in names:
        ctx.measures.check(n)
    return names


def _fit(ctx: Context, names: Sequence[str], attributes: Sequence[str]) -> tuple[Tensor, dict, list[Tensor]]:
    """Sampled latents, their measured attributes and the fitted unit normal of each of ``attributes``."""
    s = ctx.settings
    z = ctx.space.sample(s.num_samples, s.seed)
    values = ctx.measures.attributes(ctx.space.images(z, s.batch_size), names)
    normals = [fit_direction(z, ctx.measures.labels(a, values[a]), s.classifier, s.C) for a in attributes]
    return z, values, normals


def _edits(ctx: Context, z: Tensor, base: dict, normal: Tensor, names: Sequence[str], grid: str) -> dict:
    """Edits z + αn of the first ``explore.edits`` latents for every α in ``explore.alphas``: the grid (a row
    per latent, a column per α) and each attribute's mean change against α, and its slope."""
    s = ctx.settings
    alphas = torch.tensor(list(s.alphas), dtype=z.dtype)
    n = min(s.edits, len(z))
    edited = edit(z[:n], normal, alphas)
    images = ctx.space.images(edited.flatten(0, 1), s.batch_size)
    ctx.save_grid(images.view(len(alphas), n, *images.shape[1:])[:, : s.rows].transpose(0, 1), grid)
    values = ctx.measures.attributes(images, names)
    change = {k: (values[k].view(len(alphas), n) - base[k][:n]).mean(1) for k in names}
    return {"change": {k: v.tolist() for k, v in change.items()}, "slope": {k: slope(alphas, v) for k, v in change.items()}}


def direction(ctx: Context) -> dict:
    """An attribute's direction from a linear classifier on sampled latents, and what editing along it does."""
    s = ctx.settings
    names = _names(ctx, s.attribute)
    z, values, (normal,) = _fit(ctx, names, [s.attribute])
    return {"attribute": s.attribute, "alphas": list(s.alphas), **_edits(ctx, z, values, normal, names, f"direction_{s.attribute}")}


def decouple(ctx: Context) -> dict:
    """Editing attribute 1 along its direction n₁, then along n₁′ = n₁ − (n₁ᵀn₂)n₂ normalized: how much each
    still moves attribute 2 (``explore.other_attribute``)."""
    s = ctx.settings
    if s.attribute == s.other_attribute:
        raise ConfigError(f"explore.attribute and explore.other_attribute are both {s.attribute}: decoupling needs two attributes")
    names = _names(ctx, s.attribute, s.other_attribute)
    z, values, (n1, n2) = _fit(ctx, names, [s.attribute, s.other_attribute])
    n1_prime = project_out(n1, n2)
    before = _edits(ctx, z, values, n1, names, f"edit_{s.attribute}")
    after = _edits(ctx, z, values, n1_prime, names, f"edit_{s.attribute}_without_{s.other_attribute}")
    return {
        "attribute": s.attribute,
        "other_attribute": s.other_attribute,
        "cosine_n1_n2": float(n1 @ n2),
        "alphas": list(s.alphas),
        "before": before,
        "after": after,
        "other_slope_before": before["slope"][s.other_attribute],
        "other_slope_after": after["slope"][s.other_attribute],
    }


def _group(ctx: Context, term, z: Tensor, probs, values: dict) -> Tensor:
    """Indices of the sampled latents in the group ``term`` describes: those the classifier calls ``class``
    (any when null), then of them those on the ``side`` (high/low) of the median of ``property``."""
    index = torch.arange(len(z))
    if term.get("class") is not None:
        if probs is None:
            raise ConfigError("an arithmetic term with a class needs the dataset's classifier (eval.features=classifier)")
        index = index[probs.argmax(1) == int(term["class"])]
    if term.get("property") is not None and len(index):
        v = values[term.property][index]
        index = index[v > v.median()] if term.side == "high" else index[v <= v.median()]
    if not len(index):
        raise ConfigError(f"no sampled latent is in the group {dict(term)}: raise explore.num_samples or pick another group")
    return index


def arithmetic(ctx: Context) -> dict:
    """Σ signᵢ · mean(z | groupᵢ) over ``explore.terms``, each mean over the group's first ``exemplars`` members
    (DCGAN averaged 3); the grid shows each group's members then its mean, then the result and the result plus
    N(0, ``noise``²) in the last row; the classifier's verdict on those results is measured."""
    s = ctx.settings
    properties = sorted({t.property for t in s.terms if t.get("property")})
    names = _names(ctx, *properties)
    z = ctx.space.sample(s.num_samples, s.seed)
    images = ctx.space.images(z, s.batch_size)
    values = ctx.measures.attributes(images, names)
    probs = ctx.measures.probabilities(images) if ctx.measures.classifies else None
    groups = [_group(ctx, t, z, probs, values)[: s.exemplars] for t in s.terms]
    means = [z[g].mean(0) for g in groups]
    result = combine(means, [float(t.sign) for t in s.terms])
    noise = torch.randn(s.columns - 1, z.shape[1], generator=torch.Generator().manual_seed(s.seed + 1)) * s.noise
    results = torch.cat([result[None], result + noise])
    result_images = ctx.space.images(results, s.batch_size)
    k = s.columns - 1
    rows = [torch.cat([images[g[:k]], ctx.space.images(m[None])]) for g, m in zip(groups, means)]
    rows = [torch.cat([r, -torch.ones(s.columns - len(r), *r.shape[1:])]) for r in rows]  # black to the row's end
    ctx.save_grid(torch.stack([*rows, result_images]), "arithmetic")
    record = {"terms": [{**dict(t), "members": len(g)} for t, g in zip(s.terms, groups)]}
    result_values = ctx.measures.attributes(result_images, names)
    record["result"] = {k: float(v.mean()) for k, v in result_values.items()}
    record["groups"] = {k: [float(values[k][g].mean()) for g in groups] for k in names}
    if probs is not None:
        verdicts = ctx.measures.probabilities(result_images).argmax(1)
        record["result_classes"] = torch.bincount(verdicts, minlength=ctx.measures.num_classes).tolist()
        record["result_class"] = int(verdicts.mode().values)
    return record
