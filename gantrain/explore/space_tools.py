"""The tools that move through or between latent spaces: interpolation (lerp and slerp), inversion
(``project``), linear maps between two models' spaces, and the truncation trade-off. Each takes a ``Context``
and returns what it measured."""

from __future__ import annotations

import math

import torch

from gantrain.data import take
from gantrain.data.images import read_image
from gantrain.errors import ConfigError
from gantrain.explore.context import Context
from gantrain.explore.maps import apply_map, fit_linear_map, r_squared
from gantrain.explore.paths import interpolate as path_through
from gantrain.explore.paths import step_ratio
from gantrain.explore.project import project as invert
from gantrain.explore.spaces import LatentSpace
from gantrain.metrics.evaluator import nearest_neighbours
from gantrain.visualize import plt  # the Agg backend

Tensor = torch.Tensor


def mse(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).pow(2).flatten(1).mean(1)


def locate(ctx: Context, space: LatentSpace, images: Tensor) -> Tensor:
    """Latents of ``images`` in ``space``: its encoder where it has one (``explore.locate=auto`` or ``encoder``),
    else inversion by optimization, started from the best of ``explore.candidates`` prior draws."""
    s = ctx.settings
    if space.encodes and s.locate != "project":
        with torch.no_grad():
            return space.encode(images)
    if not space.invertible:
        raise ConfigError(
            f"{space.family.name}'s {space.name} is reached by a {space.family.sampling_steps}-step sampler and is not inverted: project and map need a GAN or the VAE"
        )
    init = space.origin(len(images))
    if s.candidates:
        pool = space.sample(s.candidates, s.seed + 7)
        init = pool[torch.cdist(images.flatten(1), space.images(pool, s.batch_size).flatten(1)).argmin(1)]
    features = ctx.measures.differentiable_features if ctx.measures.extractor is not None and s.feature_weight > 0 else None
    device = space.device
    latents, _ = invert(space.decode, images.to(device), init.to(device), s.invert_steps, s.invert_lr, features, s.feature_weight)
    return latents.cpu()


def interpolate(ctx: Context) -> dict:
    """Paths through the latents of ``explore.seeds`` (or of that many held-out images, ``endpoints=heldout``),
    linear and spherical; measured: each path's largest step over its mean step in the classifier's features."""
    s, space = ctx.settings, ctx.space
    if len(s.seeds) < 2:
        raise ConfigError(f"explore.seeds={list(s.seeds)}: a path needs two or more latents")
    if s.endpoints == "heldout":
        latents = locate(ctx, space, take(ctx.bundle.heldout, len(s.seeds))["image"])
    else:
        latents = torch.cat([space.sample(1, int(seed)) for seed in s.seeds])
    record = {"space": space.name, "feature_space": ctx.measures.feature_space, "points": s.points}
    for mode in ("lerp", "slerp"):
        paths = path_through(latents, s.points, mode)
        images = space.images(paths.flatten(0, 1), s.batch_size).view(*paths.shape[:2], *ctx.bundle.spec.shape)
        ratio = step_ratio(ctx.measures.features(images.flatten(0, 1)).view(*paths.shape[:2], -1))
        record[mode] = {"max_over_mean_step": float(ratio.mean()), "per_path": ratio.tolist()}
        ctx.save_grid(images, f"interpolate_{space.name}_{mode}")
        if s.gif:
            frames = [((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).squeeze(-1).numpy() for x in images.flatten(0, 1)]
            from PIL import Image

            first, *rest = [Image.fromarray(f) for f in frames]
            first.save(ctx.out / f"interpolate_{space.name}_{mode}.gif", save_all=True, append_images=rest, duration=80, loop=0)
            ctx.files.append(f"interpolate_{space.name}_{mode}.gif")
    return record


def project(ctx: Context) -> dict:
    """Latents reproducing ``explore.image`` (a file) or the first ``explore.count`` held-out images; measured:
    the reconstruction error, and the error of each image's nearest training image (in pixels) beside it: a
    generator that reconstructs held-out images better than the training set holds them generalizes."""
    s = ctx.settings
    spec = ctx.bundle.spec
    if s.image:
        try:
            targets = read_image(s.image, spec.channels, spec.shape[-1])[None]
        except OSError as err:
            raise ConfigError(f"explore.image={s.image!r} cannot be read: {err}") from None
    else:
        targets = take(ctx.bundle.heldout, s.count)["image"].float()
    latents = locate(ctx, ctx.space, targets)
    with torch.no_grad():
        reconstructions = ctx.space.images(latents, s.batch_size)
    train = take(ctx.bundle.train, len(ctx.bundle.train))["image"].float()
    _, nearest = nearest_neighbours(targets.flatten(1), train.flatten(1))
    neighbours = train[nearest[:, 0]]
    error, train_error = mse(reconstructions, targets), mse(neighbours, targets)
    ctx.save_grid(torch.stack([targets, reconstructions, neighbours]), f"project_{ctx.space.name}")
    return {
        "space": ctx.space.name,
        "images": len(targets),
        "reconstruction_mse": float(error.mean()),
        "reconstruction_psnr": float((10 * torch.log10(4 / error.clamp_min(1e-12))).mean()),
        "nearest_train_mse": float(train_error.mean()),
        "closer_than_nearest_train": float((error < train_error).double().mean()),
    }


def map_spaces(ctx: Context) -> dict:
    """A least-squares map M from this model's latents to ``explore.other``'s, fitted on ``support`` points
    G₁(z) located in the other space; measured on ``heldout`` new points: R² of M z against the located latents,
    and the image error of G₂(M z) against G₁(z), beside that of an identity (equal sizes) and a random map."""
    s, one, two = ctx.settings, ctx.space, ctx.other
    z1 = one.sample(s.support + s.heldout, s.seed)
    images = one.images(z1, s.batch_size)
    z2 = locate(ctx, two, images)
    m, b = fit_linear_map(z1[: s.support], z2[: s.support])
    z1_h, z2_h, target = z1[s.support :], z2[s.support :], images[s.support :]
    mapped = apply_map(m, b, z1_h)
    generator = torch.Generator().manual_seed(s.seed + 3)
    random = torch.randn(two.dim, one.dim, generator=generator) / math.sqrt(one.dim)
    shown = {"G1(z)": target, "G2(located)": two.images(z2_h), "G2(Mz)": two.images(mapped), "G2(random z)": two.images(z1_h @ random.T)}
    if one.dim == two.dim:
        shown["G2(z)"] = two.images(z1_h)
    ctx.save_grid(torch.stack([v[: s.columns] for v in shown.values()]), "map")
    return {
        "spaces": [one.name, two.name],
        "support": s.support,
        "heldout": s.heldout,
        "r2": r_squared(mapped, z2_h),
        "r2_train": r_squared(apply_map(m, b, z1[: s.support]), z2[: s.support]),
        "image_mse": {k: float(mse(v, target).mean()) for k, v in shown.items() if k != "G1(z)"},
        "rows": list(shown),
    }


def truncation(ctx: Context) -> dict:
    """Samples at each truncation value (StyleGAN's ψ, else τ of a truncated normal z; null: none) and their
    FID, precision and recall: the fidelity/diversity trade-off as a table, a plot and a grid."""
    s, space = ctx.settings, ctx.space
    kind = space.truncation
    if kind is None:
        raise ConfigError(f"truncation is a GAN sampling trick; {space.family.name} has no truncation")
    values = list(s.psi if kind == "psi" else s.tau)
    table, rows = [], []
    for value in values:
        if kind == "psi":
            space.psi = 1.0 if value is None else float(value)
            z = space.sample(s.num_samples, s.seed)
        else:
            z = space.sample(s.num_samples, s.seed, tau=value)
        images = space.images(z, s.batch_size)
        metrics = ctx.evaluator.evaluate(images)
        table.append({kind: value, **{k.split("/")[0]: v for k, v in metrics.items()}})
        rows.append(images[: s.columns])
    ctx.save_grid(torch.stack(rows), f"truncation_{kind}")
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    x = [math.inf if v is None else v for v in values]
    x = [max(v for v in x if v != math.inf) * 1.25 if v == math.inf else v for v in x]
    for key in ("precision", "recall"):
        ax.plot(x, [r.get(key, math.nan) for r in table], "o-", label=key)
    ax.set(xlabel=kind, ylabel="precision / recall")
    twin = ax.twinx()
    twin.plot(x, [r.get("FID", math.nan) for r in table], "s--", color="tab:red", label="FID")
    twin.set_ylabel("FID")
    fig.legend(loc="upper center", ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(ctx.out / f"truncation_{kind}_plot.png")
    plt.close(fig)
    ctx.files.append(f"truncation_{kind}_plot.png")
    return {"kind": kind, "num_samples": s.num_samples, "table": table}


TOOLS = {"interpolate": interpolate, "project": project, "map": map_spaces, "truncation": truncation}
