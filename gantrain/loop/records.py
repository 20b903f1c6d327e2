"""What a run records while it trains: the mean of every logged term per interval, and the best metric so far."""

from __future__ import annotations

import logging
import math
from typing import Optional

import torch

log = logging.getLogger("gantrain.trainer")


class ScalarLog:
    """Sums each step's logged terms; ``means()`` gives their means over the steps since the last call.

    Gradient norms (``grad_norm/*``) are measured on the last step of an interval only, so they are logged
    as measured, not divided by the interval's length.
    """

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.measured: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            if k.startswith("grad_norm/"):
                self.measured[k] = v
            else:
                self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def means(self) -> dict[str, float]:
        out = {k: (v / self.count).item() for k, v in self.sums.items()}
        out.update({k: v.item() for k, v in self.measured.items()})
        self.sums, self.measured, self.count = {}, {}, 0
        return out


class BestMetric:
    """The best value of ``metric`` seen so far (larger is better when ``higher``); ``improves(metrics)`` says
    whether these metrics beat it, and remembers them if so. NaN never improves."""

    def __init__(self, metric: Optional[str], higher: bool = False):
        self.metric, self.higher = metric, higher
        self.value: Optional[float] = None

    def improves(self, metrics: dict[str, float]) -> bool:
        value = metrics.get(self.metric)
        if value is None or math.isnan(value):
            return False
        if self.value is not None and not (value > self.value if self.higher else value < self.value):
            return False
        self.value = value
        return True
