"""k-nearest-neighbour manifold metrics of generated features against real ones.

Each real sample X_i defines a ball B(X_i, r_i) whose radius r_i is the distance to its k-th nearest other
real sample; the generated samples Y_j define balls the same way.

- Precision / recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric …", Eqs. 1–3, k = 3):
  precision = share of Y_j inside the union of real balls; recall = share of X_i inside the union of
  generated balls. A point is inside a ball when its distance is ≤ the radius.
- Density / coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics …", Eqs. 3–4, k = 5):
  density = 1/(kM) Σ_j Σ_i 1[Y_j ∈ B(X_i, r_i)]; coverage = 1/N Σ_i 1[∃ j: Y_j ∈ B(X_i, r_i)].
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def knn_radii(x: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """Distance of each row of ``x`` to its k-th nearest other row."""
    if len(x) <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples, got {len(x)}")
    return torch.cat([torch.cdist(x[s], x).topk(k + 1, dim=1, largest=False).values[:, k] for s in _chunks(len(x), chunk)])


def ball_counts(points: Tensor, centres: Tensor, radii: Tensor, chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """For each point, how many balls B(centre, radius) contain it; for each centre, the distance to its
    nearest point."""
    counts, nearest = [], torch.full((len(centres),), float("inf"), dtype=centres.dtype)
    for s in _chunks(len(points), chunk):
        d = torch.cdist(points[s], centres)
        counts.append((d <= radii).sum(dim=1))
        nearest = torch.minimum(nearest, d.min(dim=0).values)
    return torch.cat(counts), nearest


def _prepare(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need two N×d feature matrices of one d, got {tuple(real.shape)} and {tuple(fake.shape)}")
    dtype = torch.float64 if torch.float64 in (real.dtype, fake.dtype) else torch.float32
    return real.detach().cpu().to(dtype), fake.detach().cpu().to(dtype)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake`` against ``real`` features."""
    real, fake = _prepare(real, fake)
    in_real, _ = ball_counts(fake, real, knn_radii(real, k))
    in_fake, _ = ball_counts(real, fake, knn_radii(fake, k))
    return float((in_real > 0).double().mean()), float((in_fake > 0).double().mean())


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) of ``fake`` against ``real`` features."""
    real, fake = _prepare(real, fake)
    radii = knn_radii(real, k)
    counts, nearest_fake = ball_counts(fake, real, radii)
    return float(counts.double().sum() / (k * len(fake))), float((nearest_fake <= radii).double().mean())
