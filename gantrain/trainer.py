"""The one training loop. It knows nothing of specific models or methods: a Family supplies the phases and losses
(gantrain/families/base.py), an Updater turns losses into updates (gantrain/loop/update.py)."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import torch
from torch.optim.swa_utils import AveragedModel
from tqdm.contrib.logging import logging_redirect_tqdm

from gantrain import checkpoint
from gantrain.data import BatchStream, to_device
from gantrain.errors import ConfigError
from gantrain.families.base import Family
from gantrain.loop import distributed
from gantrain.loop.console import eval_line, log_line, progress_bar
from gantrain.loop.guards import Interrupted, NanGuard, NonFiniteLoss, StopSignals
from gantrain.loop.records import BestMetric, ScalarLog
from gantrain.loop.update import Updater, ema_with_warmup
from gantrain.settings import TrainerSettings
from gantrain.visualize import log_real, save_preview

__all__ = ["Interrupted", "NonFiniteLoss", "Trainer"]
log = logging.getLogger(__name__)


class Trainer:
    """Runs ``settings.steps`` training steps of ``family`` (gantrain/settings.py documents every setting; they
    may also be given as keywords).

    After the first step and every ``log_every`` steps it logs the mean of each logged term since the last log,
    the gradient norms of the last step, learning rates and images/s to TensorBoard and the log (a short line on
    the console, gantrain/loop/console.py); every ``sample_every`` steps it saves previews made from fixed inputs
    (``family.fixed_inputs`` of the fixed ``heldout`` batch); every ``eval_every`` steps
    (and at the end) ``evaluator`` scores samples of the sampling network (EMA copy if any) and the checkpoint
    with the best ``best_metric`` so far is kept as ``checkpoints/best.pt``; every ``checkpoint_every`` steps
    (and at the end) it writes ``checkpoints/last.pt``. ``evaluator`` provides ``sample(family, network)``,
    ``evaluate(samples)`` and ``memorization(samples, out_dir, writer, step)`` (gantrain.metrics.Evaluator).

    A NaN or Inf loss stops the run or skips its update (``nan_policy``, gantrain/loop/guards.py). SIGINT and
    SIGTERM finish the step in progress, write the checkpoint and raise ``Interrupted``. Under ``torchrun`` the
    ranks train together (gantrain/loop/distributed.py) and rank 0 alone writes logs, previews and checkpoints.
    """

    def __init__(
        self,
        family: Family,
        stream: BatchStream,
        optimizers: dict[str, torch.optim.Optimizer],
        run_dir: Path,
        *,
        settings: Optional[TrainerSettings] = None,
        heldout: Optional[dict] = None,
        evaluator=None,
        best_metric: Optional[str] = None,
        best_higher: bool = False,
        seed: int = 0,
        config_yaml: str = "",
        **fields,
    ):
        self.settings = s = settings if settings is not None else TrainerSettings(**fields)
        self.family, self.stream, self.run_dir = family, stream, Path(run_dir)
        self.device = family.device
        self.phases = family.phases(s.d_steps)
        self.updater = Updater(optimizers, self.device, s)
        sampler = family.networks[family.sample_network]
        self.ema = AveragedModel(sampler, multi_avg_fn=ema_with_warmup(s.ema, s.ema_start), use_buffers=True) if s.ema > 0 else None
        self.heldout = heldout or {}
        self.fixed_inputs = to_device(family.fixed_inputs(s.num_samples, torch.Generator().manual_seed(seed), self.heldout), self.device)
        self.config_yaml = config_yaml
        self.evaluator = evaluator
        # under torchrun rank 0 alone has the evaluator; every rank keeps the schedule (the NaN check before it)
        self.eval_every = s.eval_every if evaluator is not None or distributed.active() else 0
        self.best = BestMetric(best_metric, best_higher)
        self.guard = NanGuard(s.nan_policy, self.run_dir)
        self.signals = StopSignals()
        self.step = 0
        self.writer = distributed.summary_writer(self.run_dir)
        self.last_logs: dict[str, float] = {}
        self.last_metrics: dict[str, float] = {}
        self.last_checkpoint: Optional[tuple[Path, int]] = None

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.updater.optimizers

    # ---------------------------------------------------------------- one step
    def train_step(self, measure: bool = False) -> dict[str, torch.Tensor]:
        """Every phase's updates, then the EMA. Returns the logged terms, each a phase's mean over its updates
        and micro-batches, and when ``measure`` each phase's gradient norm (``grad_norm/<phase>``, the mean
        over its updates)."""
        logs: dict[str, torch.Tensor] = {}
        for phase in self.phases:
            for _ in range(phase.repeats):
                done = self._update(phase, measure)
                if done is None:  # skipped (nan_policy=skip)
                    continue
                terms, norm = done
                for k, v in terms.items():
                    logs[k] = logs.get(k, 0.0) + v.float() / (phase.repeats * self.settings.accumulate)
                if norm is not None:
                    key = f"grad_norm/{phase.name}"
                    logs[key] = logs.get(key, 0.0) + norm / phase.repeats
        if self.ema is not None:
            self.ema.update_parameters(self.family.networks[self.family.sample_network])
        self.step += 1
        self.updater.end_of_step()
        return logs

    def _update(self, phase, measure: bool) -> Optional[tuple[dict[str, torch.Tensor], Optional[torch.Tensor]]]:
        """One optimizer update of ``phase`` over ``accumulate`` micro-batches: the terms summed over them and
        the gradient norm when ``measure``; None if a non-finite loss skipped it."""
        self.updater.begin(phase.name)
        summed: dict[str, torch.Tensor] = {}
        for _ in range(self.settings.accumulate):
            batch = to_device(next(self.stream), self.device) if phase.takes_batch else {}
            with self.updater.autocast():
                loss, terms = self.family.loss(phase.name, batch, self.step)
            if not self.guard.admit(self.step + 1, phase.name, loss, terms):
                self.updater.begin(phase.name)  # drop what earlier micro-batches accumulated
                return None
            self.updater.backward(phase.name, loss)
            for k, v in terms.items():
                summed[k] = summed.get(k, 0.0) + v
        norm = self.updater.step(phase.name, measure)
        self.family.after_update(phase.name, self.step)
        return summed, norm

    # ---------------------------------------------------------------- the loop
    def fit(self) -> dict[str, float]:
        s = self.settings
        scalars, images, tic = ScalarLog(), 0, time.perf_counter()
        batch_images = self.stream.sampler.batch_size * s.accumulate * sum(p.repeats for p in self.phases if p.takes_batch)
        log_real(self.writer, self.heldout.get("image"), self.step)  # what the samples should look like
        with (
            logging_redirect_tqdm(),
            progress_bar(s.steps, self.step, self.family.name, disable=not distributed.is_main()) as bar,
            self.signals.active(),
        ):
            while self.step < s.steps:
                scalars.add(self.train_step(measure=self._logs_at(self.step + 1)))
                images += batch_images
                bar.update(1)
                stop = self.signals.agreed() is not None
                due = {
                    name: self.step % every == 0 or self.step == s.steps
                    for name, every in (
                        ("sample", s.sample_every),
                        ("eval", self.eval_every),
                        ("save", s.checkpoint_every),
                    )
                    if every
                }
                due["log"] = self._logs_at(self.step) or self.step == s.steps
                if self.guard.pending and (stop or any(due.values()) or len(self.guard.pending) >= 1024):
                    self.guard.check(self.last_checkpoint)  # before anything logs, evaluates or saves these weights
                if due["log"]:
                    elapsed, steps = time.perf_counter() - tic, scalars.count
                    self._log_scalars(distributed.mean_over_ranks(scalars.means()), images / elapsed, steps / elapsed)
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in self.last_logs.items() if k.startswith("loss/")})
                    images, tic = 0, time.perf_counter()
                if due["sample"] and distributed.is_main():
                    self.preview()
                if due.get("eval") and self.evaluator is not None:
                    tic += self.evaluate(final=self.step == s.steps)  # not counted in images/s
                if due["save"]:
                    self.save()
                if stop and self.step < s.steps:
                    path = self.save()
                    self.writer.flush()
                    raise Interrupted(self.signals.received, self.step, path)
        self.writer.flush()
        return {**self.last_logs, **self.last_metrics}

    def _logs_at(self, step: int) -> bool:
        """Whether step ``step`` (counted from 1) logs its terms and measures its gradient norms: every
        ``log_every`` steps, and the first step too, so a run shows its losses and speed at once."""
        return step == 1 or step % self.settings.log_every == 0

    def _log_scalars(self, means: dict[str, float], images_per_s: float, steps_per_s: float) -> None:
        means.update({"speed/images_per_s": images_per_s, "speed/steps_per_s": steps_per_s})
        means.update(self.updater.learning_rates())
        if self.settings.nan_policy == "skip":
            means["nonfinite/skipped_updates"] = self.guard.skipped
        for k, v in means.items():
            self.writer.add_scalar(k, v, self.step)
        self.last_logs = means
        full = ", ".join(f"{k}={v:.4g}" for k, v in means.items())
        log.info("step %d: %s", self.step, full, extra={"console": log_line(self.step, self.settings.steps, means)})

    # ---------------------------------------------------------------- samples
    def sampling_network(self) -> torch.nn.Module:
        return self.family.sampling_network(self.ema.module if self.ema is not None else None)

    @contextmanager
    def _evaluating(self):
        """The sampling network (EMA copy if any) in eval mode, without gradients, on forked RNG states:
        previews and metrics (taken at steps that differ between a resumed and an uninterrupted
        run) never shift the training's random streams."""
        net = self.sampling_network()
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad(), checkpoint.forked_rng(self.device):
                yield net
        finally:
            net.train(was_training)

    def sample(self, inputs: dict) -> torch.Tensor:
        """Generate from ``inputs`` with the sampling network (EMA copy if any) in eval mode."""
        with self._evaluating() as net:
            return self.family.generate(inputs, net)

    def preview(self) -> Path:
        """Save the fixed-input samples (and the family's extra previews) as PNGs and TensorBoard images."""
        heldout = to_device(self.heldout, self.device)
        with self._evaluating() as net:
            samples = self.family.generate(self.fixed_inputs, net)
            extras = self.family.previews(net, self.fixed_inputs, heldout)
        real = self.heldout.get("image")
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        save_preview(self.family.sample_preview(samples, self.fixed_inputs), real, path, self.writer, self.step)
        for tag, preview in extras.items():
            save_preview(preview, real, self.run_dir / "samples" / f"{tag}_step_{self.step:07d}.png", self.writer, self.step, tag=tag)
        return path

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, final: bool = False) -> float:
        """Score samples of the sampling network, log the metrics, keep the best checkpoint; returns the
        seconds it took."""
        tic = time.perf_counter()
        with self._evaluating() as net:
            samples = self.evaluator.sample(self.family, net)
        metrics = self.evaluator.evaluate(samples)
        if final:
            metrics.update(self.evaluator.memorization(samples, self.run_dir / "samples", self.writer, self.step))
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, self.step)
        self.last_metrics = metrics
        full = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        log.info("step %d: %s", self.step, full, extra={"console": eval_line(self.step, self.settings.steps, metrics, self.best.metric)})
        if self.best.improves(metrics):
            checkpoint.save({**self.state_dict(), "metrics": metrics}, self.run_dir / "checkpoints" / "best.pt")
        return time.perf_counter() - tic

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "family": self.family.name,
            "step": self.step,
            "networks": self.family.state_dict(),
            **self.updater.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "data": self.stream.state_dict(),
            "rng": checkpoint.rng_state(),
            "config": self.config_yaml,
            "best": self.best.value,
            "skipped_updates": self.guard.skipped,
        }

    def load_state_dict(self, state: dict, source: str = "the checkpoint") -> None:
        """Continue from ``state`` (``source`` names it in errors). TensorBoard events the interrupted run
        logged after this checkpoint are dropped (``purge_step``), so its curves do not double back."""
        if state["family"] != self.family.name:
            raise ConfigError(f"{source} is of a {state['family']} run, not {self.family.name}: use a checkpoint of this model")
        checkpoint.restore(self.family, state["networks"], source)
        self.updater.load_state_dict(state)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.stream.load_state_dict(state["data"])
        ranks = state.get("rng_ranks") or []  # every rank's RNG states, each restored to its rank
        checkpoint.set_rng_state(ranks[distributed.rank()] if len(ranks) == distributed.world_size() else state["rng"])
        self.step = int(state["step"])
        self.best.value = state["best"]
        self.guard.skipped = int(state["skipped_updates"])
        self.last_checkpoint = (self.run_dir / "checkpoints" / "last.pt", self.step)
        self.writer.close()
        self.writer = distributed.summary_writer(self.run_dir, purge_step=self.step + 1)  # events up to the checkpoint stay

    def save(self) -> Path:
        path = self.run_dir / "checkpoints" / "last.pt"
        rng_ranks = distributed.gather(checkpoint.rng_state())
        if distributed.is_main():
            checkpoint.save({**self.state_dict(), "rng_ranks": rng_ranks}, path)
        distributed.barrier()  # no rank goes on (or exits) before the checkpoint is whole
        self.last_checkpoint = (path, self.step)
        return path
