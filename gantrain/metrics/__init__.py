"""Evaluation metrics of generated samples.

The API the trainer, ``gantrain-eval`` and the benchmark scripts share:

    from gantrain.metrics import build_evaluator
    evaluator = build_evaluator(cfg, bundle, device)  # cfg: a composed train config; bundle: build_data(cfg)
    samples = evaluator.sample(family, network)       # eval.num_samples from fixed seeded inputs
    metrics = evaluator.evaluate(samples)             # {"FID/classifier": …, "IS/classifier": …, …}

or, without a config, ``Evaluator(bundle, build_extractor("classifier", bundle=bundle, dataset_key=…))``.
The metric functions below take feature tensors and can be used on their own.

Layers (each imports only those before it): the metric functions (frechet, scores, manifold, modes) and
features (the extractor base, Inception, any module) → classifier → extractors (what eval.features names) →
evaluator. Figures are drawn by gantrain.visualize.
"""

from gantrain.metrics.evaluator import Evaluator, build_evaluator, higher_is_better
from gantrain.metrics.extractors import build_extractor
from gantrain.metrics.features import Extractor, cache_dir, dataset_features
from gantrain.metrics.frechet import GaussianStats, frechet_distance, frechet_distance_sqrtm, gaussian_stats
from gantrain.metrics.manifold import density_coverage, precision_recall
from gantrain.metrics.modes import mode_coverage
from gantrain.metrics.scores import class_histogram_kl, inception_score, kernel_inception_distance

__all__ = [
    "Evaluator",
    "Extractor",
    "GaussianStats",
    "build_evaluator",
    "build_extractor",
    "cache_dir",
    "class_histogram_kl",
    "dataset_features",
    "density_coverage",
    "frechet_distance",
    "frechet_distance_sqrtm",
    "gaussian_stats",
    "higher_is_better",
    "inception_score",
    "kernel_inception_distance",
    "mode_coverage",
    "precision_recall",
]
