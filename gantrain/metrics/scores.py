"""Scores of generated samples from classifier logits or features: Inception Score, KID, class balance."""

from __future__ import annotations

import math

import numpy as np
import torch

Tensor = torch.Tensor


def inception_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016, §4): exp E_x KL(p(y|x) ‖ p(y)), p(y) the mean prediction,
    computed on ``splits`` consecutive parts of the samples; returns the mean and std over the parts."""
    if logits.dim() != 2 or len(logits) < splits:
        raise ValueError(f"need N×C logits with N ≥ splits={splits}, got shape {tuple(logits.shape)}")
    log_p = torch.log_softmax(logits.detach().cpu().double(), dim=1)
    scores = []
    for part in log_p.chunk(splits):
        log_py = torch.logsumexp(part, dim=0) - math.log(len(part))  # log of the mean of p(y|x)
        kl = (part.exp() * (part - log_py)).sum(dim=1).mean()
        scores.append(kl.exp().item())
    return float(np.mean(scores)), float(np.std(scores))


def _polynomial_mmd2(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD² of x and y (m×d each) under k(a, b) = (aᵀb / d + 1)³: Gretton et al. 2012's MMD²_u
    (Lemma 6), whose within-set sums exclude i = j."""
    m, d = x.shape
    k_xx, k_yy, k_xy = ((((a @ b.T) / d + 1) ** 3).double() for a, b in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def kernel_inception_distance(
    real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018, "Demystifying MMD GANs", §4): the unbiased MMD² with the cubic
    polynomial kernel, averaged over ``subsets`` random subsets of ``min(subset_size, N_real, N_fake)``
    samples of each set (drawn without replacement within a subset); returns the mean and std."""
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    real, fake = real.detach().cpu(), fake.detach().cpu()  # products in the features' dtype, sums in float64
    rng = np.random.default_rng(seed)
    values = [
        _polynomial_mmd2(real[rng.choice(len(real), m, replace=False)], fake[rng.choice(len(fake), m, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def class_histogram_kl(logits: Tensor) -> float:
    """KL(p̂ ‖ uniform) = Σ_c p̂_c log(C p̂_c) of the histogram p̂ of predicted classes (natural log; 0 when
    every class is predicted equally often, log C when only one is)."""
    classes = logits.shape[1]
    counts = torch.bincount(logits.argmax(dim=1).cpu(), minlength=classes).double()
    p = counts / counts.sum()
    p = p[p > 0]
    return float((p * (p * classes).log()).sum())
