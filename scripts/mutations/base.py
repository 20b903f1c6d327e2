"""The record of a planted bug and the test files that several groups name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    file: str
    tests: list[str]
    old: str
    new: str


LOSSES, REG, REL = "tests/test_losses.py", "tests/test_regularizers.py", "tests/test_reliability.py"
SPINE, BEHAVIOURS = "tests/test_spine.py", "tests/test_behaviours.py"
RESUME = [
    "tests/test_training.py::test_resume_equals_an_uninterrupted_run_parameter_for_parameter",
    f"{REL}::test_signal_checkpoints_the_step_and_resume_matches_an_uninterrupted_run",
    "tests/test_progan.py::test_resume_mid_fade_continues_at_the_same_resolution_and_alpha",
    "tests/test_cli.py::test_resume_from_the_command_line_keeps_the_original_record_and_runs_only_the_remaining_steps",
]
METRICS, DATA = "tests/test_metrics.py", "tests/test_data.py"
SWEEPS = "tests/test_sweeps.py"
