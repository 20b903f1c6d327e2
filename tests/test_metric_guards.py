"""Metric behaviour that planted bugs (scripts/mutations/) showed no other test pinned down."""

import pytest
import torch

from gantrain.metrics import inception_score


def test_inception_score_takes_the_marginal_within_each_split():
    """Salimans et al. (2016) average exp E KL(p(y|x) ‖ p(y)) over splits with p(y) the mean prediction of each
    split: a split of one confidently predicted class scores 1, even when the other split predicts another."""
    logits = torch.zeros(200, 10)
    logits[:100, 0] = logits[100:, 1] = 50.0
    assert inception_score(logits, splits=2) == pytest.approx((1.0, 0.0), abs=1e-9)
    assert inception_score(logits, splits=1)[0] == pytest.approx(2.0, rel=1e-9)  # two equally likely classes
