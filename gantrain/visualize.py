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


def scatter_figure(fake: torch.Tensor, real: torch.Tensor, title: str = ""):
    """Real points (grey) under generated ones (blue), in the first two coordinates."""
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.6", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:blue", alpha=0.6, label="generated")
    lim = 1.2 * max(real.abs().max().item(), 1e-3)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title)
    ax.legend(loc="upper right", markerscale=4, fontsize=7)
    fig.tight_layout()
    return fig


def save_preview(samples: torch.Tensor, real: torch.Tensor, path: Path, writer=None, step: int = 0,
                 nrow: Optional[int] = None, tag: str = "samples") -> None:
    """Save ``samples`` as a PNG at ``path`` and, given a SummaryWriter, log it at ``step``."""
    samples, real = samples.detach().cpu(), real.detach().cpu()
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
