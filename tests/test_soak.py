"""Soak (issue 17): a run killed with ``kill -9`` at ten moments and resumed each time ends with exactly the
weights of an uninterrupted run, and its checkpoint folder never holds a torn or leftover file. Half the kills
come at a random moment, half the instant ``last.pt.tmp`` appears, while a checkpoint is being written."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from gantrain import checkpoint

from test_reliability import TINY, _gantrain, _wait_for_checkpoint, assert_same_networks, networks

pytestmark = pytest.mark.slow

# The issue asks for 20,000 steps: about 4 minutes per run at ~100 steps/s on a busy 2-core CPU, twice
# (the reference and the killed run) plus eleven starts. GANTRAIN_SOAK_STEPS=20000 runs it in full.
STEPS = int(os.environ.get("GANTRAIN_SOAK_STEPS", 2000))
KILLS = 10
SOAK = [*TINY, f"trainer.steps={STEPS}", "trainer.checkpoint_every=50", "trainer.log_every=500"]


def checkpoint_files(run: Path) -> set[str]:
    return {p.name for p in (run / "checkpoints").iterdir()}


def kill_while_writing(proc, tmp: Path, timeout: float = 120.0) -> None:
    """``kill -9`` the moment ``tmp`` (the next checkpoint, being written) appears: polled without sleeping, as
    a tiny run's write lasts milliseconds."""
    deadline = time.monotonic() + timeout
    while not tmp.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint write began"
    proc.kill()


@pytest.mark.timeout(1800)
def test_ten_kill_9_and_resumes_end_with_the_weights_of_an_uninterrupted_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")  # no progress bar filling the undrained stderr pipes
    rng = random.Random(17)
    reference_run, run = tmp_path / "reference", tmp_path / "killed"
    reference = _gantrain([*SOAK, f"hydra.run.dir={reference_run}"], tmp_path)  # alongside the killed run
    last = run / "checkpoints" / "last.pt"
    targets = sorted(rng.sample(range(50, STEPS - 100), KILLS))
    procs = [reference]
    leftovers, stopped_at, tmp = 0, 0, run / "checkpoints" / "last.pt.tmp"
    try:
        for leg, target in enumerate(targets):
            started = time.time_ns()
            procs.append(_gantrain([*SOAK, f"hydra.run.dir={run}"] if leg == 0 else [f"resume={run}"], tmp_path))
            _wait_for_checkpoint(last, procs[-1], max(target, stopped_at + 1))  # this leg has saved
            if leg % 2:  # this leg's save renamed any earlier leftover away: a last.pt.tmp now is a write begun
                kill_while_writing(procs[-1], tmp)
            else:
                time.sleep(rng.uniform(0.0, 1.0))  # a random moment: between checkpoints or inside a write
                procs[-1].kill()
            procs[-1].communicate()
            files = checkpoint_files(run)
            assert files <= {"last.pt", "last.pt.tmp"}, files
            if "last.pt.tmp" in files:  # killed mid-write; a leftover of an earlier kill is overwritten by the next save
                leftovers += 1
                assert (run / "checkpoints" / "last.pt.tmp").stat().st_mtime_ns >= started, f"leg {leg} kept an old last.pt.tmp"
            step = checkpoint.load(last)["step"]  # loads: never torn
            assert stopped_at < step < STEPS, (leg, stopped_at, step)
            stopped_at = step
        procs.append(_gantrain([f"resume={run}"], tmp_path))
        out, err = procs[-1].communicate(timeout=1200)
        assert procs[-1].returncode == 0, err
        assert "Traceback" not in out + err
        out, err = reference.communicate(timeout=1200)
        assert reference.returncode == 0, err
    finally:  # whatever failed above, no gantrain process outlives the test
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    print(f"{KILLS} kills at steps {targets}; {leftovers} landed mid-write")
    assert leftovers >= 1, "no kill landed while a checkpoint was being written"
    assert checkpoint_files(run) == {"last.pt"}, f"{leftovers} kills left a last.pt.tmp, and one is still there"
    assert checkpoint.load(last)["step"] == STEPS
    assert_same_networks(networks(run), networks(reference_run))
