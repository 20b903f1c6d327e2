"""scikit-learn's 1797 handwritten 8×8 digits (shipped with the package), resized and scaled to [-1, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits as _sk_digits
from sklearn.model_selection import train_test_split

from gantrain.data import DataBundle, DataSpec, InMemory


def digits(image_size: int = 16, holdout: float = 0.2, seed: int = 0) -> DataBundle:
    """Digits split into train / held-out (stratified by class), bilinearly resized to ``image_size``."""
    if image_size < 8:
        raise ValueError(f"dataset.image_size={image_size}: digits are 8×8, use 8 or more (16 by default)")
    x, y = _sk_digits(return_X_y=True)
    images = torch.as_tensor(x, dtype=torch.float32).view(-1, 1, 8, 8)
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (images / 8.0 - 1.0).clamp_(-1.0, 1.0)  # pixel values are 0..16
    labels = torch.as_tensor(y, dtype=torch.long)
    train_idx, test_idx = train_test_split(torch.arange(len(labels)).numpy(), test_size=holdout, stratify=y, random_state=seed)
    train_idx, test_idx = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
    return DataBundle(
        train=InMemory({"image": images[train_idx], "label": labels[train_idx]}),
        heldout=InMemory({"image": images[test_idx], "label": labels[test_idx]}),
        spec=DataSpec(kind="image", shape=(1, image_size, image_size), num_classes=10),
    )
