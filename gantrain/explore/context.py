"""What every tool is given (``Context``) and how it writes its grids."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torchvision.utils import save_image

from gantrain.data import DataBundle
from gantrain.explore.measures import Measures
from gantrain.explore.spaces import LatentSpace
from gantrain.visualize import image_grid

Tensor = torch.Tensor


@dataclass
class Context:
    """``space``: the checkpoint's latent space; ``settings``: the ``explore`` config; ``out``: the folder for the
    grids; ``bundle``: the run's data; ``other``: a second model's space (``explore.other``); ``evaluator``: the
    run's metrics (for ``truncation``)."""

    space: LatentSpace
    measures: Measures
    settings: Any
    out: Path
    bundle: Optional[DataBundle] = None
    other: Optional[LatentSpace] = None
    evaluator: Any = None
    files: list[str] = field(default_factory=list)

    def save_grid(self, images: Tensor, name: str) -> None:
        """Save ``images`` (rows, columns, C, H, W) as ``name``.png, one row per row."""
        rows, cols = images.shape[:2]
        path = self.out / f"{name}.png"
        save_image(image_grid(images.reshape(rows * cols, *images.shape[2:]), cols), path)
        self.files.append(path.name)
