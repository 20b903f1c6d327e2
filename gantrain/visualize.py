"""Previews of generated samples: image grids (torchvision ``make_grid``) or 2D scatter plots."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid, save_image  # noqa: E402


def image_grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    """A C×H×W grid in [0, 1] of images in [-1, 1]."""
    return make_grid(images.float().clamp(-1, 1), nrow=nrow, normalize=True, value_range=(-1, 1), padding=1)


def scatter_figure(fake: torch.Tensor, real: Optional[torch.Tensor], title: str = ""):
    """Real points (grey; none given: none drawn) under generated ones (blue), in the first two coordinates."""
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.6", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:blue", alpha=0.6, label="generated")
    lim = 1.2 * max((real if real is not None else fake).abs().max().item(), 1e-3)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title)
    ax.legend(loc="upper right", markerscale=4, fontsize=7)
    fig.tight_layout()
    return fig


def save_preview(
    samples: torch.Tensor,
    real: Optional[torch.Tensor],
    path: Path,
    writer=None,
    step: int = 0,
    nrow: Optional[int] = None,
    tag: str = "samples",
) -> None:
    """Save ``samples`` as a PNG at ``path`` and, given a SummaryWriter, log it at ``step``; points are drawn
    over the ``real`` ones."""
    samples = samples.detach().cpu()
    real = real.detach().cpu() if real is not None else None
    path.parent.mkdir(parents=True, exist_ok=True)
    if samples.dim() == 4:
        grid = image_grid(samples, nrow or max(1, int(len(samples) ** 0.5)))
        save_image(grid, path)
        if writer is not None:
            writer.add_image(tag, grid, step)
    else:
        fig = scatter_figure(samples, real, title=f"step {step}")
        fig.savefig(path)
        if writer is not None:
            writer.add_figure(tag, fig, step)  # closes the figure
        else:
            plt.close(fig)


def memorization_figures(
    samples: torch.Tensor,
    neighbours: torch.Tensor,
    heldout_distances: torch.Tensor,
    sample_distances: torch.Tensor,
    space: str,
    ratio: float,
    out_dir: Optional[Path] = None,
    writer=None,
    step: int = 0,
) -> None:
    """``memorization.png``: each row a generated sample and its nearest training images (``neighbours``:
    rows × k × C×H×W); ``nn_distances.png``: histograms of held-out→train and generated→train nearest-neighbour
    distances in ``space``. Saved under ``out_dir`` and logged to ``writer``."""
    grid = image_grid(torch.cat([samples[:, None].cpu(), neighbours], dim=1).flatten(0, 1), nrow=1 + neighbours.shape[1])
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    ax.hist(heldout_distances.numpy(), bins=40, alpha=0.6, density=True, label="held-out → train")
    ax.hist(sample_distances.numpy(), bins=40, alpha=0.6, density=True, label="generated → train")
    ax.set(xlabel=f"nearest-neighbour distance ({space})", ylabel="density", title=f"median ratio {ratio:.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        save_image(grid, Path(out_dir) / "memorization.png")
        fig.savefig(Path(out_dir) / "nn_distances.png")
    if writer is not None:
        writer.add_image("memorization", grid, step)
        writer.add_figure("nn_distances", fig, step)  # closes the figure
    else:
        plt.close(fig)
