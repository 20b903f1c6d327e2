"""Attribute directions in a latent space (Shen et al. 2020, "InterFaceGAN", §2.2–2.3): the unit normal of a
linear classifier's separating hyperplane, edits z + α n, and conditional editing by orthogonal projection,
n₁′ = (n₁ − (n₁ᵀn₂) n₂)/‖·‖, so that moving along n₁′ leaves the attribute of n₂ unchanged (for linear ones)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

Tensor = torch.Tensor
CLASSIFIERS = ("svm", "logistic")


def fit_direction(latents: Tensor, labels: Tensor, classifier: str = "svm", C: float = 1.0) -> Tensor:
    """The unit normal of the hyperplane a linear ``svm`` or ``logistic`` regression fits to (latents (N, D),
    binary labels (N,)), pointing to the positive class."""
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier={classifier!r}: choose one of {', '.join(CLASSIFIERS)}")
    y = np.asarray(labels).astype(int)
    if len(np.unique(y)) < 2:
        raise ValueError("all sampled latents have the same label: no direction separates them (sample more, or pick another attribute)")
    model = LinearSVC(C=C, max_iter=20000) if classifier == "svm" else LogisticRegression(C=C, max_iter=5000)
    model.fit(latents.detach().double().cpu().numpy(), y)
    normal = torch.as_tensor(model.coef_[0], dtype=latents.dtype)
    return normal / normal.norm()


def decouple(n1: Tensor, n2: Tensor) -> Tensor:
    """n₁ with its component along n₂ removed, normalized: n₁′ᵀn₂ = 0 (InterFaceGAN Eq. 3's projection)."""
    u2 = n2 / n2.norm()
    n = n1 - (n1 @ u2) * u2
    return n / n.norm()


def edit(latents: Tensor, direction: Tensor, alphas: Tensor) -> Tensor:
    """z + α n for every α: (len(alphas), N, D)."""
    return latents.unsqueeze(0) + alphas.view(-1, 1, 1).to(latents.dtype) * direction.view(1, 1, -1)


def slope(alphas: Tensor, changes: Tensor) -> float:
    """The least-squares slope of ``changes`` against ``alphas`` (both (A,))."""
    a = alphas.double() - alphas.double().mean()
    return float((a * (changes.double() - changes.double().mean())).sum() / (a * a).sum())
