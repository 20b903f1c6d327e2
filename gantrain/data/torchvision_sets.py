"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, held in memory as uint8 at the model's size.

Nothing is downloaded unless ``download=true``; without the files, a one-line error says where they go.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import datasets

from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.errors import ConfigError

_SETS = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}


def _as_uint8_images(data, image_size: int) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(data))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # N×H×W (grey) or N×H×W×C (colour)
    if x.shape[-1] != image_size:
        x = F.interpolate(x.float(), size=(image_size, image_size), mode="bilinear", antialias=True)
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x.contiguous()


def torchvision_dataset(name: str, root: str = "data", image_size: int = 32, download: bool = False) -> DataBundle:
    """The official train split for training and the official test split as held-out data."""
    cls = _SETS[name]
    try:
        splits = [cls(root, train=train, download=download) for train in (True, False)]
    except RuntimeError as err:
        raise ConfigError(f"{name} is not under dataset.root={root!r} ({err}); pass dataset.download=true to fetch it") from None
    train, test = (
        InMemory({"image": _as_uint8_images(s.data, image_size), "label": torch.as_tensor(np.asarray(s.targets), dtype=torch.long)})
        for s in splits
    )
    return DataBundle(
        train=train,
        heldout=test,
        spec=DataSpec(kind="image", shape=tuple(train.fields["image"].shape[1:]), num_classes=len(splits[0].classes)),
    )
