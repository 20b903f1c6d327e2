"""What stops a run cleanly: a non-finite loss (the NaN policy) and SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import torch

from gantrain.loop import distributed
from gantrain.run_dir import resume_command

log = logging.getLogger("gantrain.trainer")


class NonFiniteLoss(RuntimeError):
    """A loss was NaN or Inf under ``nan_policy="stop"``: the run stopped without saving the bad weights."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: the step in progress was finished and checkpointed, then the loop stopped."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"{signal.Signals(signum).name} after step {step}: saved {checkpoint}")


def _nonfinite_terms(terms: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{k}={v.float().mean().item():.4g}" for k, v in terms.items() if not torch.isfinite(v).all())


class NanGuard:
    """Decides whether a loss may update the weights.

    ``stop``: always; ``isfinite(loss)`` stays on the device until ``check`` reads the queue (at the next log,
    preview, evaluation or checkpoint step: one sync there), so the loop never waits for the device on its
    account, and ``check`` raises ``NonFiniteLoss`` before anything logs, evaluates or saves those weights.
    ``skip``: only a finite loss; deciding needs its value now, one sync per update (as GradScaler's own skip
    of an update with Inf gradients), and skipped updates are counted. In a distributed run both decisions are
    taken by all ranks together: a non-finite loss on any rank stops (or skips the update on) every rank.
    """

    def __init__(self, policy: str, run_dir: Path):
        self.policy, self.run_dir = policy, run_dir
        self.skipped = 0
        self.pending: list[tuple[int, str, torch.Tensor, dict]] = []  # (step, phase, isfinite(loss), terms)

    def admit(self, step: int, phase: str, loss: torch.Tensor, terms: dict) -> bool:
        finite = torch.isfinite(loss.detach())
        if self.policy == "stop":
            self.pending.append((step, phase, finite, terms))
            return True
        if distributed.agree(bool(finite.item()), "min"):
            return True
        self.skipped += 1
        log.warning(
            "step %d: %s loss is not finite (%s): update skipped (%d so far)", step, phase, _nonfinite_terms(terms) or "total", self.skipped
        )
        return False

    def check(self, last_checkpoint: Optional[tuple[Path, int]]) -> None:
        """Raise ``NonFiniteLoss`` for the first queued update whose loss was NaN or Inf."""
        pending, self.pending = self.pending, []
        if not pending or distributed.agree(bool(torch.stack([finite for _, _, finite, _ in pending]).all()), "min"):
            return
        here = next((p for p in pending if not bool(p[2])), None)
        if here is None:  # this rank's losses were finite: another rank's were not
            step, phase, what = pending[-1][0], pending[-1][1], "on another rank"
        else:
            step, phase, _, terms = here
            what = _nonfinite_terms(terms) or f"the total {phase} loss (its logged terms are finite)"
        if last_checkpoint is None:
            last = "no checkpoint was written before it: start again"
        else:
            path, good = last_checkpoint
            last = f"the last good checkpoint is {path} (step {good}): continue it with {resume_command(self.run_dir)} override_resume=true"
        raise NonFiniteLoss(
            f"non-finite loss at step {step} ({phase} update): {what}; stopped without saving. {last} "
            f"and a lower learning rate (optimizer.lr=...), or with trainer.nan_policy=skip to skip such updates"
        )


class StopSignals:
    """While active (a context), SIGINT and SIGTERM (a cluster's preemption) set ``received`` instead of
    stopping the process, so the loop can finish its step and checkpoint; the handlers in place before come
    back at once, so a second signal acts immediately. Under ``torchrun`` they stay until the checkpoint is
    written, because torchrun forwards every signal it gets to each worker (a Ctrl-C reaches a worker twice);
    torchrun kills the workers 30 s after forwarding a signal if they are still running."""

    def __init__(self):
        self.received: Optional[int] = None

    def agreed(self) -> Optional[int]:
        """The signal that stops the run, taken by all ranks together: one rank's signal stops every rank at
        the same step (None: go on). A signal whose handler runs during the all-reduce (where a rank spends much
        of its time) is kept for the next step, never overwritten by this step's decision."""
        decided = distributed.agree(self.received or 0) or None
        if decided is not None:
            self.received = decided
        return decided

    @contextmanager
    def active(self):
        self.received = None
        if threading.current_thread() is not threading.main_thread():  # only it receives signals
            yield self
            return
        previous = {}
        restore_at_once = not distributed.launched()

        def request_stop(signum, frame):
            self.received = self.received or signum
            for s, handler in previous.items():
                if restore_at_once:
                    signal.signal(s, handler)

        for s in (signal.SIGINT, signal.SIGTERM):
            previous[s] = signal.signal(s, request_stop) or signal.SIG_DFL
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
