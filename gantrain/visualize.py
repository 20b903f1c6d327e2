"""Previews a person can read at their saved size: labelled image grids (``Grid``, drawn by ``render``) and 2D
scatter plots.

A sample is upscaled by nearest neighbour to at least ``CELL`` pixels on its shorter side (a 16-px digit is drawn
4× at 64 px), cells are set 2 px apart and groups of cells that belong together (a sample's input | output |
target, a reconstruction pair) a wider gap apart, and rows and columns that mean something carry a label (ψ,
class, source A / B, input / output) drawn with matplotlib's DejaVu Sans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence, Union

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

Tensor = torch.Tensor
CELL = 64  # pixels on a sample's shorter side, at least
GAP, GROUP_GAP = 2, 12  # between cells; between groups of cells (``Grid.breaks``)
FONT_SIZE, PAD = 12, 4  # label text; space around it
BACKGROUND, INK = 255, 0  # white canvas, black labels


@dataclass(frozen=True)
class Grid:
    """Images to draw as one grid: ``images`` is rows × columns × C×H×W in [-1, 1] (a NaN cell is left blank);
    ``column_labels`` and ``row_labels`` name each column and row (or are empty); a wider gap falls before every
    column index in ``breaks``, setting groups of columns apart."""

    images: Tensor
    column_labels: Sequence[str] = ()
    row_labels: Sequence[str] = ()
    breaks: Sequence[int] = ()

    def __post_init__(self):
        if self.images.dim() != 5:
            raise ValueError(f"Grid images are rows × columns × C×H×W, not of shape {tuple(self.images.shape)}")
        rows, columns = self.images.shape[:2]
        if len(self.column_labels) not in (0, columns) or len(self.row_labels) not in (0, rows):
            raise ValueError(f"{len(self.column_labels)} column / {len(self.row_labels)} row labels for a {rows}×{columns} grid")

    @classmethod
    def of(cls, images: Tensor, columns: Optional[int] = None, column_labels: Sequence[str] = ()) -> "Grid":
        """N images row-major, ``columns`` a row (default ⌊√N⌋, as torchvision's make_grid); the last row is
        filled with blank cells."""
        n = len(images)
        columns = columns or max(1, int(n**0.5))
        rows = -(-n // columns)
        blank = images.new_full((rows * columns - n, *images.shape[1:]), float("nan"))
        return cls(torch.cat([images, blank]).unflatten(0, (rows, columns)), column_labels)

    @classmethod
    def of_groups(cls, panels: Sequence[Tensor], labels: Sequence[str], per_row: Optional[int] = None) -> "Grid":
        """Each sample's ``panels`` (k tensors of N×C×H×W, e.g. input, output, target) side by side as one group
        of k cells labelled ``labels``, ``per_row`` groups a row (default ⌊√N⌋); channels are matched (grey
        panels repeated beside colour ones)."""
        channels = max(p.shape[1] for p in panels)
        k = len(panels)
        stacked = torch.stack([p.expand(-1, channels, -1, -1) for p in panels], 1)  # N × k × C×H×W
        grid = cls.of(stacked.flatten(1, 2), per_row)  # each cell a group, flattened
        columns = grid.images.shape[1]
        images = grid.images.unflatten(2, (k, channels)).flatten(1, 2)
        return cls(images, list(labels) * columns, (), tuple(range(k, k * columns, k)))


@lru_cache(maxsize=1)
def _font():
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), FONT_SIZE)
    except OSError:  # no FreeType: Pillow's own bitmap font
        return ImageFont.load_default()


def _text_size(text: str) -> tuple[int, int]:
    left, top, right, bottom = _font().getbbox(text)
    return right - left, bottom


@dataclass(frozen=True)
class Layout:
    """Where ``render`` puts each cell: cell (i, j) covers rows ``top[i]`` … ``top[i] + cell_height`` and columns
    ``left[j]`` … ``left[j] + cell_width`` of a ``height`` × ``width`` canvas; ``scale`` is the upscaling factor."""

    scale: int
    cell_height: int
    cell_width: int
    top: tuple[int, ...]
    left: tuple[int, ...]
    height: int
    width: int


def layout(grid: Grid) -> Layout:
    rows, columns, _, h, w = grid.images.shape
    scale = max(1, math.ceil(CELL / min(h, w)))
    label_height = max((_text_size(t)[1] for t in (*grid.column_labels, *grid.row_labels)), default=0)
    top0 = label_height + 2 * PAD if grid.column_labels else GAP
    left0 = max(_text_size(t)[0] for t in grid.row_labels) + 2 * PAD if grid.row_labels else GAP
    breaks = set(grid.breaks)
    left, x = [], left0
    for j in range(columns):
        x += (GROUP_GAP - GAP) if j in breaks else 0
        left.append(x)
        x += w * scale + GAP
    top = tuple(top0 + i * (h * scale + GAP) for i in range(rows))
    return Layout(scale, h * scale, w * scale, top, tuple(left), top[-1] + h * scale + GAP, x)


def render(grid: Grid) -> Tensor:
    """The grid drawn as a 3×H×W image in [0, 1] (grey samples repeated to RGB)."""
    at = layout(grid)
    images = grid.images.detach().float().cpu().clamp(-1, 1)
    if images.shape[2] != 3:
        images = images.mean(2, keepdim=True).expand(-1, -1, 3, -1, -1) if images.shape[2] != 1 else images.expand(-1, -1, 3, -1, -1)
    cells = ((images + 1) * 127.5).round().nan_to_num(BACKGROUND)
    cells = cells.repeat_interleave(at.scale, -2).repeat_interleave(at.scale, -1).permute(0, 1, 3, 4, 2).to(torch.uint8).numpy()
    canvas = np.full((at.height, at.width, 3), BACKGROUND, np.uint8)
    for i, y in enumerate(at.top):
        for j, x in enumerate(at.left):
            canvas[y : y + at.cell_height, x : x + at.cell_width] = cells[i, j]
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for j, text in enumerate(grid.column_labels):
        width, _ = _text_size(text)
        draw.text((at.left[j] + (at.cell_width - width) // 2, PAD), text, fill=(INK,) * 3, font=_font())
    for i, text in enumerate(grid.row_labels):
        width, height = _text_size(text)
        draw.text((at.left[0] - PAD - width, at.top[i] + (at.cell_height - height) // 2), text, fill=(INK,) * 3, font=_font())
    return torch.from_numpy(np.array(picture)).permute(2, 0, 1).float() / 255


def image_grid(images: Tensor, nrow: int) -> Tensor:
    """A plain 3×H×W grid in [0, 1] of images in [-1, 1], ``nrow`` a row (for figures of several previews)."""
    return render(Grid.of(images, nrow))


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
    preview: Union[Grid, Tensor],
    real: Optional[Tensor],
    path: Path,
    writer=None,
    step: int = 0,
    tag: str = "samples",
) -> None:
    """Save ``preview`` (a Grid, N images as a square grid, or N points drawn over the ``real`` ones) as a PNG at
    ``path`` and, given a SummaryWriter, log it as ``tag`` at ``step``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(preview, Tensor) and preview.dim() != 4:
        real = real.detach().cpu() if real is not None else None
        fig = scatter_figure(preview.detach().cpu(), real, title=f"step {step}")
        fig.savefig(path)
        if writer is not None:
            writer.add_figure(tag, fig, step)  # closes the figure
        else:
            plt.close(fig)
        return
    picture = render(preview if isinstance(preview, Grid) else Grid.of(preview.detach().cpu()))
    save_picture(picture, path)
    if writer is not None:
        writer.add_image(tag, picture, step)


def save_picture(picture: Tensor, path: Path) -> None:
    """A 3×H×W image in [0, 1] as a PNG."""
    Image.fromarray((picture * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()).save(path)


def log_real(writer, real: Optional[Tensor], step: int = 0) -> None:
    """One grid of real (held-out) images as ``real`` in TensorBoard, to compare the samples with."""
    if writer is not None and real is not None and real.dim() == 4:
        writer.add_image("real", render(Grid.of(real.detach().cpu())), step)


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
    k = neighbours.shape[1]
    rows = torch.cat([samples[:, None].cpu(), neighbours], dim=1)
    picture = render(Grid(rows, ["sample", *(f"nearest {i + 1}" for i in range(k))], (), (1,)))
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    ax.hist(heldout_distances.numpy(), bins=40, alpha=0.6, density=True, label="held-out → train")
    ax.hist(sample_distances.numpy(), bins=40, alpha=0.6, density=True, label="generated → train")
    ax.set(xlabel=f"nearest-neighbour distance ({space})", ylabel="density", title=f"median ratio {ratio:.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        save_picture(picture, Path(out_dir) / "memorization.png")
        fig.savefig(Path(out_dir) / "nn_distances.png")
    if writer is not None:
        writer.add_image("memorization", picture, step)
        writer.add_figure("nn_distances", fig, step)  # closes the figure
    else:
        plt.close(fig)
