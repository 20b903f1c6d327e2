"""The feature extractor ``eval.features`` names: the dataset's classifier, the FID Inception-v3, or any module."""

from __future__ import annotations

from typing import Optional

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gantrain.errors import ConfigError
from gantrain.metrics.classifier import load_or_train_classifier
from gantrain.metrics.features import Extractor, InceptionExtractor, ModuleExtractor, cache_dir, inception_cache_path

# what a run without any metric says once, instead of evaluating nothing
NO_METRICS_HINT = (
    "for FID, KID, precision and recall pass eval.features=inception eval.inception_weights=FILE "
    "(pip install 'gantrain[inception]'), or dataset.labels=true with one subfolder per class"
)


def has_class_labels(bundle) -> bool:
    """Whether ``bundle`` carries class labels the dataset classifier can learn (attributes are no classes)."""
    return bundle is not None and bundle.spec.num_classes >= 2 and "label" in bundle.spec.fields


def auto_features(bundle, eval_cfg) -> str:
    """``eval.features=auto`` (the default): ``classifier`` where the data has class labels, else ``inception``
    where its weights are at hand (``eval.inception_weights``, or torch-fidelity's cache) and torch-fidelity is
    installed, else ``none`` (only the paired pixel metrics, where the family has targets)."""
    if has_class_labels(bundle):
        return "classifier"
    weights = eval_cfg.get("inception_weights")
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        return "none"
    return "inception" if weights or inception_cache_path().is_file() else "none"


def build_extractor(
    features, *, bundle=None, dataset_key: Optional[str] = None, eval_cfg=None, device: torch.device | str = "cpu"
) -> Optional[Extractor]:
    """The extractor ``features`` names (``"classifier"``, ``"inception"``, ``"auto"``: see ``auto_features``;
    ``"none"`` or null: none, so only the
    paired pixel metrics are computed) or instantiates (a mapping with ``_target_``, and optionally ``name``), on
    ``device``. ``eval_cfg`` supplies the extractors' settings
    (``classifier``, ``inception_weights``, ``inception_download``, ``cache_dir``)."""
    eval_cfg = OmegaConf.create(eval_cfg or {})
    if isinstance(features, str) and features == "auto":
        features = auto_features(bundle, eval_cfg)
    if features is None or features == "none":
        return None
    if isinstance(features, str) and features == "classifier":
        if not has_class_labels(bundle):
            raise ConfigError(
                "eval.features=classifier trains on the dataset's class labels, but this dataset has none: "
                "use eval.features=inception, a {_target_: …} module or none (pixel metrics of paired data only)"
            )
        settings = OmegaConf.to_container(eval_cfg.get("classifier") or OmegaConf.create(), resolve=True)
        extractor = load_or_train_classifier(bundle, dataset_key, settings, cache_dir(eval_cfg.get("cache_dir")), device)
    elif isinstance(features, str) and features == "inception":
        extractor = InceptionExtractor(eval_cfg.get("inception_weights"), bool(eval_cfg.get("inception_download", True)))
    elif isinstance(features, str):
        raise ConfigError(f"eval.features={features!r}: use auto, classifier, inception, none or a {{_target_: …}} module")
    else:
        node = OmegaConf.create(features)
        if "_target_" not in node:
            raise ConfigError("eval.features given as a mapping needs a _target_ (a module mapping images to features)")
        node = OmegaConf.to_container(node, resolve=True)
        name = node.pop("name", None) or node["_target_"].rsplit(".", 1)[-1].lower()
        extractor = ModuleExtractor(instantiate(node), name)
    return extractor.to(device)
