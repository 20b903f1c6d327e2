"""The evaluator: every metric of a generator's samples against a dataset, in one call.

Images: features of the generated samples and of the held-out split (computed once, cached on disk per
dataset + extractor) give ``FID/<ext>``, ``IS/<ext>`` (when the extractor has logits), ``KID/<ext>``,
``precision/<ext>``, ``recall/<ext>``, ``density/<ext>``, ``coverage/<ext>``, and with the dataset's own
classifier ``class_KL/<ext>`` (predicted-class histogram against uniform) and ``accuracy/<ext>`` (its
held-out accuracy). ``memorization`` compares generated samples with their nearest training images.
Where the family says what each sample should be (``Family.targets``: a translation's held-out target, an
inpainting hole, a class), the paired metrics of gantrain/metrics/paired.py: ``L1/pixels``, ``PSNR/pixels``,
``SSIM/pixels`` (and ``L1/hole``, ``PSNR/hole``), and ``class_accuracy/<ext>``; for translators that go back
(``Family.round_trips``: CycleGAN, StarGAN) ``L1/round_trip``, the mean |x − back(there(x))|; where they say which label map
each sample should show (``segmentation``), ``mIoU/segmenter`` and ``pixel_accuracy/segmenter`` of a segmenter
trained on the real images (gantrain/metrics/segmenter.py).
Points drawn from a known Gaussian mixture (ring8, grid25): ``modes/captured``, ``modes/hq_fraction`` and
``modes/reverse_kl`` (PacGAN's definitions, gantrain/metrics/modes.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional

import torch
from omegaconf import OmegaConf

from gantrain import checkpoint
from gantrain.data import DataBundle, fetch, take, to_device
from gantrain.errors import ConfigError
from gantrain.metrics.extractors import build_extractor
from gantrain.metrics.features import Extractor, cache_dir, dataset_features, save_cached, settings_key
from gantrain.metrics.frechet import GaussianStats, frechet_distance, gaussian_stats
from gantrain.metrics.manifold import density_coverage, precision_recall
from gantrain.metrics.modes import mode_coverage
from gantrain.metrics.paired import class_accuracy, paired_scores
from gantrain.metrics.scores import class_histogram_kl, inception_score, kernel_inception_distance
from gantrain.metrics.segmenter import NAMES as SEGMENT_METRICS
from gantrain.metrics.segmenter import Segmenter, load_or_train_segmenter
from gantrain.visualize import memorization_figures

log = logging.getLogger(__name__)
Tensor = torch.Tensor

# metric name prefixes where larger is better; every other metric is better smaller
HIGHER_IS_BETTER = (
    "IS/",
    "precision/",
    "recall/",
    "density/",
    "coverage/",
    "accuracy/",
    "modes/captured",
    "modes/hq_fraction",
    "PSNR/",
    "SSIM/",
    "class_accuracy/",
    "mIoU/",
    "pixel_accuracy/",
)
# of the samples' features; then of samples against their targets (Family.targets): pixels, and the class
FEATURE_METRICS = ("FID", "IS", "KID", "precision", "recall", "density", "coverage", "class_KL", "accuracy", "memorization")
PIXEL_METRICS = ("L1", "PSNR", "SSIM")
IMAGE_METRICS = (*FEATURE_METRICS, *PIXEL_METRICS, "class_accuracy", *SEGMENT_METRICS)
POINT_METRICS = ("modes/captured", "modes/hq_fraction", "modes/reverse_kl")
# what eval.metrics may list: an image metric's name in lower case, or ``modes`` for the three point metrics
CHOICES = tuple(m.lower() for m in IMAGE_METRICS) + ("modes",)


def higher_is_better(metric: str) -> bool:
    return metric.startswith(HIGHER_IS_BETTER)


def nearest_neighbours(queries: Tensor, reference: Tensor, k: int = 1, chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """Distances and indices of the ``k`` nearest rows of ``reference`` to each row of ``queries``."""
    dist, idx = zip(*(torch.cdist(queries[s : s + chunk], reference).topk(k, dim=1, largest=False) for s in range(0, len(queries), chunk)))
    return torch.cat(dist), torch.cat(idx)


class Evaluator:
    """Metrics of generated samples against ``bundle``'s held-out split, in the feature space of
    ``extractor`` (images; None gives the paired pixel metrics only, ``eval.features=none``), or against
    ``bundle.mixture`` (points; ``extractor`` is then None).

    ``sample(family, network)`` draws ``num_samples`` from fixed seeded inputs; ``evaluate(samples)``
    returns {metric name: value}; ``memorization(samples, out_dir)`` saves the nearest-neighbour grid and
    distance histogram. ``cache`` + ``dataset_key`` keep real-data features on disk between runs.
    """

    def __init__(
        self,
        bundle: DataBundle,
        extractor: Optional[Extractor] = None,
        *,
        num_samples: int = 2000,
        batch_size: int = 250,
        seed: int = 12345,
        is_splits: int = 10,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        precision_k: int = 3,
        density_k: int = 5,
        memorization_rows: int = 8,
        memorization_neighbours: int = 5,
        memorization_max_train: int = 10000,
        cache: Optional[Path] = None,
        dataset_key: Optional[str] = None,
        metrics: Optional[list[str]] = None,
        segmenter: Optional[Segmenter] = None,
    ):
        if bundle.spec.kind == "points" and bundle.mixture is None:
            raise ConfigError("this point dataset has no known mixture: no metric applies (set trainer.eval_every=0)")
        self.bundle, self.extractor, self.segmenter = bundle, extractor, segmenter
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.is_splits, self.kid_subsets, self.kid_subset_size = is_splits, kid_subsets, kid_subset_size
        self.precision_k, self.density_k = precision_k, density_k
        self.memorization_rows, self.memorization_neighbours = memorization_rows, memorization_neighbours
        self.memorization_max_train = memorization_max_train
        self.cache, self.dataset_key = cache, dataset_key
        unknown = sorted(set(metrics or ()) - set(CHOICES))
        if unknown:
            raise ConfigError(f"eval.metrics lists {unknown[0]!r}; choose from {', '.join(CHOICES)} (null: all that apply)")
        self.selected = set(metrics) if metrics else set(CHOICES)
        self._heldout: Optional[dict] = None
        self._targets: dict = {}
        self._round_trip: Optional[Tensor] = None  # per-sample L1 of the last sample call's round trips
        self._features: dict[str, tuple[Tensor, Optional[Tensor]]] = {}
        self._real_stats: Optional[GaussianStats] = None

    @property
    def images(self) -> bool:
        return self.bundle.spec.kind == "image"

    def wants(self, metric: str) -> bool:
        """Whether ``eval.metrics`` selects ``metric`` (an IMAGE_METRICS name, or ``modes``)."""
        return metric.lower() in self.selected

    def metric_names(self, family=None) -> list[str]:
        """Names ``evaluate`` (and ``memorization``) can return for samples of ``family`` (the paired ones
        where its ``targets`` say what the samples should be; without a family, those of the last ``sample``)."""
        if not self.images:
            return list(POINT_METRICS) if self.wants("modes") else []
        ext = self.extractor
        names = [f"{m}/{ext.name}" for m in FEATURE_METRICS if self.wants(m)] if ext is not None else []
        targets = self._targets if family is None else family.targets(*self.inputs(family, 2))
        if "image" in targets:
            holes = ("L1", "PSNR") if "mask" in targets else ()
            names += [f"{m}/pixels" for m in PIXEL_METRICS if self.wants(m)] + [f"{m}/hole" for m in holes if self.wants(m)]
        if "segmentation" in targets and self.segmenter is not None:
            names += [f"{m}/{self.segmenter.name}" for m in SEGMENT_METRICS if self.wants(m)]
        if "label" in targets and self.wants("class_accuracy") and ext is not None and ext.predicts_dataset_classes:
            names.append(f"class_accuracy/{ext.name}")
        if (self._round_trip is not None if family is None else family.round_trips) and self.wants("L1"):
            names.append("L1/round_trip")
        return names

    # ------------------------------------------------------------------ data
    def split_features(self, split: str) -> tuple[Tensor, Optional[Tensor]]:
        """Features and logits of the ``heldout`` or ``train`` split (the latter capped at
        ``memorization_max_train``), from memory, the disk cache, or computed and cached."""
        if split in self._features:
            return self._features[split]
        limit = self.memorization_max_train if split == "train" else None
        path = None
        if self.cache is not None and self.dataset_key is not None and self.extractor.cache_key is not None:
            key = settings_key([self.dataset_key, self.extractor.cache_key, split, limit])
            path = Path(self.cache) / f"features-{self.extractor.name}-{key}.pt"
        if path is not None and path.is_file():
            state = checkpoint.load(path)
            result = (state["features"], state.get("logits"))
        else:
            result = dataset_features(self.extractor, getattr(self.bundle, split), limit, self.batch_size)
            if path is not None:
                save_cached({"features": result[0], "logits": result[1]}, path)
        self._features[split] = result
        return result

    def real_stats(self) -> GaussianStats:
        if self._real_stats is None:
            self._real_stats = gaussian_stats(self.split_features("heldout")[0])
        return self._real_stats

    # ------------------------------------------------------------------ samples
    def inputs(self, family, n: int) -> tuple[dict, dict]:
        """The first ``n`` of the fixed seeded inputs (and the held-out batch they were made from)."""
        if self._heldout is None:
            self._heldout = take(self.bundle.heldout, self.num_samples)
        heldout = {k: v[:n] for k, v in self._heldout.items()}
        return family.fixed_inputs(n, torch.Generator().manual_seed(self.seed), heldout), heldout

    @torch.no_grad()
    def sample(self, family, network=None) -> Tensor:
        """``num_samples`` samples of ``family`` (from ``network``, e.g. the EMA copy, in the caller's mode)
        drawn from inputs seeded by ``seed``: every evaluation of a run sees the same latents. What the samples
        should be (``family.targets``) and the round trips' errors are kept for the paired metrics of ``evaluate``."""
        inputs, heldout = self.inputs(family, self.num_samples)
        self._targets = {k: v.cpu() if isinstance(v, Tensor) else v for k, v in family.targets(inputs, heldout).items()}
        out, trips = [], []
        for start in range(0, self.num_samples, self.batch_size):
            chunk = to_device({k: v[start : start + self.batch_size] for k, v in inputs.items()}, family.device)
            out.append(family.generate(chunk, network).float().cpu())
            if family.round_trips and self.wants("L1"):
                x, back = family.round_trip(chunk, network)
                trips.append((back.float() - x.float()).abs().flatten(1).mean(1).cpu())
        self._round_trip = torch.cat(trips) if trips else None
        return torch.cat(out)

    # ------------------------------------------------------------------ metrics
    def evaluate(self, samples: Tensor) -> dict[str, float]:
        """Every selected metric of ``samples`` (images in [-1, 1], or points)."""
        if not self.images:
            if not self.wants("modes"):
                return {}
            m = mode_coverage(samples, self.bundle.mixture)
            return {"modes/captured": float(m["modes"]), "modes/hq_fraction": m["hq_fraction"], "modes/reverse_kl": m["reverse_kl"]}
        trip = {} if self._round_trip is None else {"L1/round_trip": float(self._round_trip[: len(samples)].mean())}
        return {**self.feature_metrics(samples), **self.paired(samples), **self.segmented(samples), **trip}

    def feature_metrics(self, samples: Tensor) -> dict[str, float]:
        """The selected metrics of the samples' features (none without an extractor)."""
        if self.extractor is None:
            return {}
        real, _ = self.split_features("heldout")
        fake, logits = self.extractor.extract(samples, self.batch_size)
        out = {}
        if self.wants("FID"):
            out["FID"] = frechet_distance(self.real_stats(), gaussian_stats(fake))
        if self.wants("IS") and logits is not None and len(logits) >= self.is_splits:
            out["IS"] = inception_score(logits, self.is_splits)[0]
        if self.wants("KID"):
            out["KID"] = kernel_inception_distance(*self._independent(real, fake), self.kid_subsets, self.kid_subset_size, self.seed)[0]
        if self.wants("precision") or self.wants("recall"):
            out["precision"], out["recall"] = precision_recall(real, fake, self.precision_k)
        if self.wants("density") or self.wants("coverage"):
            out["density"], out["coverage"] = density_coverage(real, fake, self.density_k)
        if self.wants("class_KL") and logits is not None and self.extractor.predicts_dataset_classes:
            out["class_KL"] = class_histogram_kl(logits)
        if self.wants("accuracy") and hasattr(self.extractor, "accuracy"):
            out["accuracy"] = float(self.extractor.accuracy)
        labels = self._targets.get("label")
        if self.wants("class_accuracy") and labels is not None and logits is not None and self.extractor.predicts_dataset_classes:
            out["class_accuracy"] = class_accuracy(logits, labels[: len(samples)])
        return {f"{k}/{self.extractor.name}": v for k, v in out.items() if self.wants(k)}

    def segmented(self, samples: Tensor) -> dict[str, float]:
        """mIoU and pixel accuracy of the segmenter's maps of ``samples`` against the maps the targets name."""
        target = self._targets.get("segmentation")
        if target is None or self.segmenter is None:
            return {}
        scores = self.segmenter.scores(samples, target[: len(samples)], self.batch_size)
        return {k: v for k, v in scores.items() if self.wants(k.split("/")[0])}

    def _independent(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """Real and generated features for KID's unbiased estimator, which assumes the two sets independent. A
        translation is not independent of its own held-out target (sample i was made from held-out row i mod N),
        so with paired targets the translations of the first h held-out rows (h: half the rows translated) are
        compared with the real rows from h on."""
        if "image" not in self._targets:
            return real, fake
        h = min(len(real), len(fake)) // 2
        return real[h:], fake[torch.arange(len(fake)) % len(real) < h]

    def paired(self, samples: Tensor) -> dict[str, float]:
        """The pixel metrics of ``samples`` against the images the last ``sample`` call's targets name."""
        target = self._targets.get("image")
        if target is None or not any(self.wants(m) for m in PIXEL_METRICS):
            return {}
        mask = self._targets.get("mask")
        scores = paired_scores(samples, target[: len(samples)].to(samples.dtype), None if mask is None else mask[: len(samples)])
        named = {(k if "/" in k else f"{k}/pixels"): v for k, v in scores.items()}
        return {k: v for k, v in named.items() if self.wants(k.split("/")[0])}

    def memorization(self, samples: Tensor, out_dir: Optional[Path] = None, writer=None, step: int = 0) -> dict[str, float]:
        """Nearest training neighbours of generated images in feature space.

        Returns ``memorization/<ext>``: the median generated→train distance over the median held-out→train
        distance (well below 1: samples closer to the training set than new real data is, a sign of copying),
        and saves the figures of ``gantrain.visualize.memorization_figures`` under ``out_dir`` and to
        ``writer``. Nothing for points, or when eval.metrics leaves it out."""
        if not self.images or self.extractor is None or not self.wants("memorization"):
            return {}
        train, _ = self.split_features("train")
        heldout, _ = self.split_features("heldout")
        fake, _ = self.extractor.extract(samples, self.batch_size)
        fake_dist, fake_idx = nearest_neighbours(fake, train, self.memorization_neighbours)
        held_dist, _ = nearest_neighbours(heldout, train, 1)
        ratio = float(fake_dist[:, 0].median() / held_dist[:, 0].median())
        rows = min(self.memorization_rows, len(samples))
        neighbours = fetch(self.bundle.train, fake_idx[:rows].flatten().tolist())["image"]
        memorization_figures(
            samples[:rows],
            neighbours.view(rows, -1, *samples.shape[1:]),
            held_dist[:, 0],
            fake_dist[:, 0],
            f"{self.extractor.name} features",
            ratio,
            out_dir,
            writer,
            step,
        )
        return {f"memorization/{self.extractor.name}": ratio}


def dataset_key(dataset_cfg) -> str:
    """Identifies a dataset config (its name and every setting that changes the data) for the caches."""
    node = OmegaConf.to_container(dataset_cfg, resolve=True)
    for key in ("preview_samples", "download"):
        node.pop(key, None)
    return f"{node.get('name', 'data')}-{settings_key(node)}"


def build_evaluator(cfg, bundle: DataBundle, device="cpu") -> Evaluator:
    """The Evaluator that ``cfg.eval`` describes for ``bundle`` (the data ``cfg.dataset`` built); trains
    or loads the feature classifier when ``eval.features=classifier``, and the segmenter for data with label maps."""
    e = cfg.eval
    key = dataset_key(cfg.dataset)
    for k in ("precision_k", "density_k", "batch_size", "is_splits", "kid_subsets", "kid_subset_size"):
        if not isinstance(e[k], int) or e[k] < 1:
            raise ConfigError(f"eval.{k}={e[k]!r} must be a positive integer")
    least = max(e.precision_k, e.density_k) + 1
    if not isinstance(e.num_samples, int) or e.num_samples < least:
        raise ConfigError(f"eval.num_samples={e.num_samples!r} must be an integer ≥ {least} (k nearest neighbours + 1)")
    extractor = None
    if bundle.spec.kind == "image":
        extractor = build_extractor(e.features, bundle=bundle, dataset_key=key, eval_cfg=e, device=device)
    segmenter = None
    if "segmentation" in bundle.spec.fields and (not e.get("metrics") or any(m.lower() in e.metrics for m in SEGMENT_METRICS)):
        settings = OmegaConf.to_container(e.segmenter, resolve=True) if e.get("segmenter") else None
        segmenter = load_or_train_segmenter(bundle, key, settings, cache_dir(e.get("cache_dir")), cfg.dataset.get("ignore_index"), device)
    return Evaluator(
        bundle,
        extractor,
        num_samples=e.num_samples,
        batch_size=e.batch_size,
        seed=e.seed,
        is_splits=e.is_splits,
        kid_subsets=e.kid_subsets,
        kid_subset_size=e.kid_subset_size,
        precision_k=e.precision_k,
        density_k=e.density_k,
        memorization_rows=e.memorization.rows,
        memorization_neighbours=e.memorization.neighbours,
        memorization_max_train=e.memorization.max_train,
        cache=cache_dir(e.get("cache_dir")),
        dataset_key=key,
        metrics=e.get("metrics"),
        segmenter=segmenter,
    )


def best_metric_name(cfg, evaluator: Evaluator, family=None) -> Optional[str]:
    """``eval.best_metric`` as a full metric name: a bare image metric (``FID``) gets the extractor's
    name (a bare pixel metric, ``PSNR``, gets ``pixels``); null means FID for images (PSNR without an
    extractor) and modes/reverse_kl for points (none when eval.metrics leaves it out or the run has no such metric). Names not among ``evaluator.metric_names(family)`` are a
    ConfigError."""
    name = cfg.eval.get("best_metric")
    if name is None:
        name = ("FID" if evaluator.extractor is not None else "PSNR") if evaluator.images else "modes/reverse_kl"
        if name.split("/")[0].lower() not in evaluator.selected:  # eval.metrics left it out: no best checkpoint
            return None
        if evaluator.images and evaluator.extractor is None and "PSNR/pixels" not in evaluator.metric_names(family):
            return None
    if evaluator.images and "/" not in name:
        suffix = "pixels" if name in PIXEL_METRICS else "segmenter" if name in SEGMENT_METRICS else evaluator.extractor.name
        name = f"{name}/{suffix}"
    names = evaluator.metric_names(family)
    if name not in names:
        raise ConfigError(f"eval.best_metric={name!r} is not a metric of this run; choose one of {', '.join(names)}")
    return name


class Observed:
    """An evaluator that calls ``observe(metrics)`` after each evaluation and otherwise is ``inner``."""

    def __init__(self, inner, observe: Callable[[dict], None]):
        self.inner, self.observe = inner, observe

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def evaluate(self, samples):
        metrics = self.inner.evaluate(samples)
        self.observe(metrics)
        return metrics
