"""Bad-input cases of run records: damaged checkpoints said to be damaged, a file passed where a run folder goes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from bad_input_kit import resumed


def random_bytes(run: Path, tmp: Path) -> None:
    (run / "checkpoints" / "last.pt").write_bytes(np.random.default_rng(0).bytes(4096))  # not a zip: read as a pickle


def empty_file(run: Path, tmp: Path) -> None:
    (run / "checkpoints" / "last.pt").write_bytes(b"")


def resume_another_file(tmp: Path, finished: Path) -> list[str]:
    run = tmp / "resumed"
    shutil.copytree(finished, run)
    shutil.copy(run / "checkpoints" / "last.pt", run / "checkpoints" / "step_2.pt")
    return [f"resume={run / 'checkpoints' / 'step_2.pt'}"]


DAMAGED = r"last.pt' is truncated or not a checkpoint \(a damaged file: {}\); use another checkpoint or start a new run$"
CASES = {
    "resume_random_bytes_is_damaged_not_pickled": (resumed(random_bytes), DAMAGED.format("UnpicklingError")),
    "resume_empty_checkpoint_is_damaged": (resumed(empty_file), DAMAGED.format("EOFError")),
    "resume_a_file_that_is_not_last_pt": (
        resume_another_file,
        r"resume='.*step_2.pt' is a file: pass the folder a run was written to \(or its checkpoints/last.pt\)",
    ),
}
