"""Evaluation metrics of generated samples.

The Python API (benchmark scripts use it as ``gantrain-eval`` and the trainer do):

    from gantrain.metrics import build_evaluator
    evaluator = build_evaluator(cfg, bundle)          # cfg: a composed train config; bundle: build_data(cfg)
    metrics = evaluator.evaluate(images)              # {"FID/classifier": …, "IS/classifier": …, …}

or, without a config, ``Evaluator(bundle, build_extractor("classifier", bundle=bundle, …))``. The metric
functions below take feature tensors and can be used on their own.
"""

from gantrain.metrics.evaluator import Evaluator, build_evaluator, dataset_features, higher_is_better
from gantrain.metrics.features import Extractor, build_extractor, cache_dir
from gantrain.metrics.frechet import GaussianStats, frechet_distance, frechet_distance_sqrtm, gaussian_stats
from gantrain.metrics.manifold import density_coverage, precision_recall
from gantrain.metrics.scores import class_histogram_kl, inception_score, kernel_inception_distance

__all__ = [
    "Evaluator", "Extractor", "GaussianStats", "build_evaluator", "build_extractor", "cache_dir", "class_histogram_kl",
    "dataset_features", "density_coverage", "frechet_distance", "frechet_distance_sqrtm", "gaussian_stats",
    "higher_is_better", "inception_score", "kernel_inception_distance", "precision_recall",
]
