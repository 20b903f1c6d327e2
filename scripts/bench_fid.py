"""Exactness and speed of gantrain's Fréchet distance against the sqrtm reference (BENCHMARKS.md §4).

For each dimension d, two sets of ``--n`` random features (Gaussian noise through two random d×d mixing
matrices, one set shifted) are fitted with ``gaussian_stats`` (float64 μ, Σ); then the Fréchet distance is
computed three ways, each timed:

- ``sqrtm``: the pytorch-fid formula, scipy.linalg.sqrtm of Σ1Σ2 (``frechet_distance_sqrtm``);
- ``ours``: ``frechet_distance`` from fresh statistics (eigh of Σ1, then eigvalsh of Σ1^½ Σ2 Σ1^½);
- ``ours, Σ1^½ cached``: the same with the real data's Σ1^½ already computed (as during training, where
  the real statistics are computed once).

Prints a table, writes ``scripts/results/fid.{json,csv,png}`` (the PNG: time against d, log scale).

    python scripts/bench_fid.py [--dims 256 512 1024 2048] [--n 10000] [--threads N] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402 (a scikit-learn dependency)

from gantrain.metrics.frechet import GaussianStats, frechet_distance, frechet_distance_sqrtm, gaussian_stats  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def features(d: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g) @ (torch.randn(d, d, generator=g) / math.sqrt(d))
    b = torch.randn(n, d, generator=g) @ (torch.randn(d, d, generator=g) / math.sqrt(d)) + 0.1
    return a, b


def timed(fn):
    tic = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--n", type=int, default=10_000, help="features per set")
    parser.add_argument("--threads", type=int, default=None, help="torch/BLAS threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)  # numpy/scipy's BLAS and LAPACK

    rows = []
    for d in args.dims:
        a, b = features(d, args.n, args.seed + d)
        (sa, sb), t_stats = timed(lambda: (gaussian_stats(a), gaussian_stats(b)))
        reference, t_sqrtm = timed(lambda: frechet_distance_sqrtm(sa, sb))
        fresh = GaussianStats(sa.mu, sa.sigma)  # no Σ1^½ yet
        ours, t_ours = timed(lambda: frechet_distance(fresh, sb))
        cached, t_cached = timed(lambda: frechet_distance(fresh, sb))  # Σ1^½ kept from the call above
        rows.append(
            {
                "d": d,
                "n": args.n,
                "fid_sqrtm": reference,
                "fid_ours": ours,
                "rel_diff": abs(ours - reference) / abs(reference),
                "rel_diff_cached": abs(cached - reference) / abs(reference),
                "stats_s": t_stats,
                "sqrtm_s": t_sqrtm,
                "ours_s": t_ours,
                "ours_cached_s": t_cached,
                "speedup": t_sqrtm / t_ours,
                "speedup_cached": t_sqrtm / t_cached,
            }
        )
        r = rows[-1]
        print(
            f"d={d}: FID {ours:.6f} (sqrtm {reference:.6f}), rel. diff {r['rel_diff']:.2e}; "
            f"sqrtm {t_sqrtm:.2f} s, ours {t_ours:.2f} s, cached {t_cached:.2f} s",
            flush=True,
        )

    header = f"{'d':>5} {'n':>6} {'FID (ours)':>14} {'FID (sqrtm)':>14} {'rel. diff':>9} {'sqrtm s':>8} {'ours s':>7} {'cached s':>8} {'speed-up':>8} {'cached':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        print(
            f"{r['d']:>5} {r['n']:>6} {r['fid_ours']:>14.6f} {r['fid_sqrtm']:>14.6f} {r['rel_diff']:>9.1e} "
            f"{r['sqrtm_s']:>8.2f} {r['ours_s']:>7.2f} {r['ours_cached_s']:>8.2f} {r['speedup']:>7.1f}× {r['speedup_cached']:>6.1f}×"
        )
    print(
        f"(threads: {torch.get_num_threads()}; statistics of both sets take {rows[-1]['stats_s']:.2f} s at d={rows[-1]['d']}, "
        "not counted in either method)"
    )

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fid.json").write_text(json.dumps({"threads": torch.get_num_threads(), "rows": rows}, indent=2) + "\n")
    with open(RESULTS / "fid.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    dims = [r["d"] for r in rows]
    for key, label in (("sqrtm_s", "scipy sqrtm (pytorch-fid)"), ("ours_s", "gantrain"), ("ours_cached_s", "gantrain, real Σ^½ cached")):
        ax.plot(dims, [r[key] for r in rows], marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel="feature dimension d", ylabel="seconds", title=f"Fréchet distance, n={args.n}")
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "fid.png")
    print(f"wrote {RESULTS / 'fid.json'}, fid.csv, fid.png")


if __name__ == "__main__":
    main()
