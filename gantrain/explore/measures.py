"""What the tools measure on images: the dataset classifier's features, class probabilities and verdicts
(gantrain/metrics/classifier.py), and the property measures of gantrain/metrics/properties.py.

Attribute names: a property (``brightness``, ``slant``, ``stroke_width``, ``size``, ``height``) or ``class_K``, the classifier's
probability of class K."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from gantrain.errors import ConfigError
from gantrain.metrics.features import Extractor
from gantrain.metrics.properties import MEASURES

Tensor = torch.Tensor


class Measures:
    def __init__(self, extractor: Optional[Extractor], num_classes: int = 0, batch_size: int = 250):
        self.extractor, self.num_classes, self.batch_size = extractor, num_classes, batch_size
        self.classifies = extractor is not None and extractor.predicts_dataset_classes

    @property
    def feature_space(self) -> str:
        return f"{self.extractor.name} features" if self.extractor is not None else "pixels"

    def check(self, name: str) -> None:
        """One ConfigError for an attribute that cannot be measured here."""
        if name in MEASURES:
            return
        if name.startswith("class_") and name[6:].isdigit():
            if not self.classifies:
                raise ConfigError(f"attribute {name} needs the dataset's classifier (eval.features=classifier on labelled data)")
            if int(name[6:]) >= self.num_classes:
                raise ConfigError(f"attribute {name}: the dataset has classes 0 to {self.num_classes - 1}")
            return
        raise ConfigError(f"attribute {name!r}: use one of {', '.join(MEASURES)} or class_K (the classifier's probability of class K)")

    def features(self, images: Tensor) -> Tensor:
        """The extractor's features, or the pixels without one."""
        if self.extractor is None:
            return images.flatten(1).float()
        return self.extractor.extract(images, self.batch_size)[0]

    def differentiable_features(self, images: Tensor) -> Tensor:
        return self.extractor(images)[0]

    def probabilities(self, images: Tensor) -> Tensor:
        return self.extractor.extract(images, self.batch_size)[1].softmax(1)

    def attributes(self, images: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
        """{name: one value per image}."""
        probs = self.probabilities(images) if any(n.startswith("class_") for n in names) else None
        return {n: probs[:, int(n[6:])] if n.startswith("class_") else MEASURES[n](images) for n in names}

    @staticmethod
    def labels(name: str, values: Tensor) -> Tensor:
        """Binary labels of an attribute: the classifier's verdict for a class (probability > ½), else above the
        median."""
        return values > (0.5 if name.startswith("class_") else values.median())
