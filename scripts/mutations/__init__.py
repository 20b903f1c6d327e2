"""Planted bugs for scripts/mutation_check.py: each replaces one exact snippet (it must occur once in ``file``)
and names the tests that must fail when it is planted (pytest node ids or files, the fewer the faster).

Add one for every new method (to the list of its group's module below): a wrong version a user could plausibly ship (a sign, a constant, a wrong
point of evaluation), not a typo, and the tests that pin the right one."""

from .base import Mutation
from .families import MUTATIONS as _families
from .loop import MUTATIONS as _loop
from .losses_regularizers import MUTATIONS as _losses_regularizers
from .metrics_data import MUTATIONS as _metrics_data
from .translation import MUTATIONS as _translation
from .workflow import MUTATIONS as _workflow

MUTATIONS = _loop + _losses_regularizers + _metrics_data + _translation + _workflow + _families

__all__ = ["MUTATIONS", "Mutation"]
