"""The one training loop. It knows nothing of specific models or methods: a Family supplies the steps."""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import torch
from torch.optim.swa_utils import AveragedModel
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gantrain import checkpoint
from gantrain.data import BatchStream
from gantrain.errors import ConfigError
from gantrain.families.base import Family
from gantrain.visualize import save_preview

log = logging.getLogger(__name__)

NAN_POLICIES = ("stop", "skip")


class NonFiniteLoss(RuntimeError):
    """A loss was NaN or Inf under ``nan_policy="stop"``: the run stopped without saving the bad weights."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: the step in progress was finished and checkpointed, then the loop stopped."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"{signal.Signals(signum).name} after step {step}: saved {checkpoint}")


def _nonfinite_terms(terms: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{k}={v.float().mean().item():.4g}" for k, v in terms.items() if not torch.isfinite(v).all())


def ema_with_warmup(decay: float):
    """EMA update with the decay min(decay, (1 + n) / (10 + n)) after n updates (the warm-up of TensorFlow's
    ExponentialMovingAverage with num_updates), so early averages do not cling to the initial weights.
    Computed on the device: no host sync per update."""

    def average(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = num_averaged.float()
        weight = 1.0 - torch.clamp((1.0 + n) / (10.0 + n), max=decay)
        for a, c in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(c, weight.to(a.dtype))
            else:  # integer buffers (batch-norm counters) follow the network
                a.copy_(c)

    return average


def linear_decay(steps: int, start: float, final: float):
    """The learning-rate factor of ``LambdaLR`` after n steps: 1 until ``start`` × ``steps``, then linear down to
    ``final`` at ``steps`` (e.g. start 0.5, final 0: constant for the first half, then annealed to zero).
    start = 1 keeps the learning rate constant."""
    first = start * steps

    def factor(n: int) -> float:
        if n <= first or steps <= first:
            return 1.0
        return 1.0 + (final - 1.0) * min(1.0, (n - first) / (steps - first))

    return factor


class Trainer:
    """Runs ``steps`` training steps of ``family``; each step runs every phase of ``family.phases(d_steps)``.

    Every ``log_every`` steps it logs the mean of each logged term since the last log, gradient norms,
    learning rates and images/s to TensorBoard; every ``sample_every`` steps it saves a preview generated
    from fixed inputs; every ``checkpoint_every`` steps (and at the end) it writes ``checkpoints/last.pt``.
    ``lr_decay_start < 1`` anneals every optimizer's learning rate linearly from that fraction of ``steps`` to
    ``lr_decay_final`` times its value at the last step (one ``LambdaLR`` per phase, stepped once per training
    step, saved in checkpoints). ``ema > 0`` keeps an exponential moving average (decay ``ema``, warmed up) of the sampling network,
    used for previews and metrics. Every ``eval_every`` steps (and at the end; 0 = never) ``evaluator`` scores samples of the
    sampling network: its metrics are logged, and the checkpoint with the best ``best_metric`` so far (larger
    is better when ``best_higher``) is kept as ``checkpoints/best.pt``; the last evaluation also runs the
    evaluator's memorization check. ``evaluator`` provides ``sample(family, network) -> samples``,
    ``evaluate(samples) -> {name: value}`` and ``memorization(samples, out_dir, writer, step) -> {name: value}``
    (gantrain.metrics.Evaluator).

    A loss that is NaN or Inf either stops the run (``nan_policy="stop"``: ``NonFiniteLoss`` names the step,
    the loss terms and the last good checkpoint; nothing is saved after it) or is skipped without updating
    anything (``nan_policy="skip"``: counted as ``nonfinite/skipped_updates``). SIGINT and SIGTERM finish the
    step in progress, write the checkpoint and raise ``Interrupted``; a second signal acts at once.
    """

    def __init__(
        self,
        family: Family,
        stream: BatchStream,
        optimizers: dict[str, torch.optim.Optimizer],
        run_dir: Path,
        *,
        steps: int,
        d_steps: int = 1,
        log_every: int = 50,
        sample_every: int = 500,
        checkpoint_every: int = 1000,
        amp: bool = False,
        amp_dtype: str = "bfloat16",
        ema: float = 0.0,
        num_samples: int = 64,
        preview_real: Optional[torch.Tensor] = None,
        seed: int = 0,
        config_yaml: str = "",
        eval_every: int = 0,
        evaluator=None,
        best_metric: Optional[str] = None,
        best_higher: bool = False,
        nan_policy: str = "stop",
        lr_decay_start: float = 1.0,
        lr_decay_final: float = 0.0,
        grad_clip: float = 0.0,
    ):
        if nan_policy not in NAN_POLICIES:
            raise ConfigError(f"trainer.nan_policy={nan_policy!r}: use one of {', '.join(NAN_POLICIES)}")
        self.family, self.stream, self.optimizers = family, stream, optimizers
        self.run_dir = Path(run_dir)
        self.steps, self.d_steps = steps, d_steps
        self.log_every, self.sample_every, self.checkpoint_every = log_every, sample_every, checkpoint_every
        self.device = family.device
        self.amp_dtype = getattr(torch, amp_dtype)
        self.amp = amp
        self.grad_clip = grad_clip
        self.schedulers = {phase: torch.optim.lr_scheduler.LambdaLR(o, linear_decay(steps, lr_decay_start, lr_decay_final))
                           for phase, o in optimizers.items()}
        self.scalers = {
            phase: torch.amp.GradScaler(self.device.type, enabled=amp and self.amp_dtype == torch.float16)
            for phase in optimizers
        }
        sampler = family.networks[family.sample_network]
        self.ema = AveragedModel(sampler, multi_avg_fn=ema_with_warmup(ema), use_buffers=True) if ema > 0 else None
        fixed = family.fixed_inputs(num_samples, torch.Generator().manual_seed(seed))
        self.fixed_inputs = {k: v.to(self.device) for k, v in fixed.items()}
        self.preview_real = preview_real
        self.config_yaml = config_yaml
        self.step = 0
        self.writer = SummaryWriter(str(self.run_dir))
        self.last_logs: dict[str, float] = {}
        self.eval_every = eval_every if evaluator is not None else 0
        self.evaluator, self.best_metric, self.best_higher = evaluator, best_metric, best_higher
        self.best_value: Optional[float] = None
        self.last_metrics: dict[str, float] = {}
        self.nan_policy, self.skipped_updates = nan_policy, 0
        self._unchecked: list[tuple[int, str, torch.Tensor, dict]] = []  # (step, phase, isfinite(loss), terms)
        self.last_checkpoint: Optional[tuple[Path, int]] = None
        self._stop_signal: Optional[int] = None

    # ---------------------------------------------------------------- one update
    def _update(self, phase: str, loss: torch.Tensor, logs: dict, measure: bool) -> None:
        optimizer, scaler = self.optimizers[phase], self.scalers[phase]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if measure or self.grad_clip:
            scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            # the norm before clipping (Ho et al. 2020 clip every network's global norm at 1)
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip or float("inf"))
            if measure:
                logs[f"grad_norm/{phase}"] = norm.detach()
        scaler.step(optimizer)
        scaler.update()

    def _admit(self, phase: str, loss: torch.Tensor, terms: dict) -> bool:
        """Whether this loss may update the weights.

        ``stop``: always; ``isfinite(loss)`` stays on the device until ``check_finite`` reads the queue at
        the next log, preview, evaluation or checkpoint step (one sync there), so the loop never waits for
        the device on its account. ``skip``: only a finite loss; deciding needs its value now, one sync per
        update (as GradScaler's own skip of an update with Inf gradients).
        """
        finite = torch.isfinite(loss.detach())
        if self.nan_policy == "stop":
            self._unchecked.append((self.step + 1, phase, finite, terms))
            return True
        if finite.item():
            return True
        self.skipped_updates += 1
        log.warning("step %d: %s loss is not finite (%s): update skipped (%d so far)",
                    self.step + 1, phase, _nonfinite_terms(terms) or "total", self.skipped_updates)
        return False

    def check_finite(self) -> None:
        """Raise ``NonFiniteLoss`` for the first queued update whose loss was NaN or Inf."""
        pending, self._unchecked = self._unchecked, []
        if not pending or bool(torch.stack([finite for _, _, finite, _ in pending]).all()):
            return
        step, phase, _, terms = next(p for p in pending if not bool(p[2]))
        what = _nonfinite_terms(terms) or f"the total {phase} loss (its logged terms are finite)"
        if self.last_checkpoint is None:
            last = "no checkpoint was written before it: start again"
        else:
            path, good = self.last_checkpoint
            last = (f"the last good checkpoint is {path} (step {good}): continue it with "
                    f"gantrain resume={self.run_dir} override_resume=true")
        raise NonFiniteLoss(
            f"non-finite loss at step {step} ({phase} update): {what}; stopped without saving. {last} "
            f"and a lower learning rate (optimizer.lr=...), or with trainer.nan_policy=skip to skip such updates"
        )

    @contextmanager
    def _stopping_on_signals(self):
        """SIGINT and SIGTERM (a cluster's preemption) ask the loop to stop after the step in progress; the
        handlers in place before come back at once, so a second signal acts immediately."""
        if threading.current_thread() is not threading.main_thread():  # only it receives signals
            yield
            return
        previous = {}

        def request_stop(signum, frame):
            self._stop_signal = signum
            for s, handler in previous.items():
                signal.signal(s, handler)

        for s in (signal.SIGINT, signal.SIGTERM):
            previous[s] = signal.signal(s, request_stop) or signal.SIG_DFL
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _next_batch(self) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in next(self.stream).items()}

    def train_step(self, measure: bool = False) -> dict[str, torch.Tensor]:
        """One step: every phase's updates. Returns the logged terms summed over repeated updates' means."""
        logs: dict[str, torch.Tensor] = {}
        for phase, repeats in self.family.phases(self.d_steps):
            for _ in range(repeats):
                batch = self._next_batch()
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                    loss, terms = self.family.loss(phase, batch, self.step)
                if not self._admit(phase, loss, terms):
                    continue
                self._update(phase, loss, terms, measure)
                self.family.after_update(phase, self.step)
                if self.ema is not None and phase == self.family.sample_network:
                    self.ema.update_parameters(self.family.networks[phase])
                for k, v in terms.items():
                    logs[k] = logs.get(k, 0.0) + v.float() / repeats
        self.step += 1
        for scheduler in self.schedulers.values():
            scheduler.step()
        return logs

    # ---------------------------------------------------------------- the loop
    def fit(self) -> dict[str, float]:
        sums: dict[str, torch.Tensor] = {}
        count, images, tic = 0, 0, time.perf_counter()
        batch_images = self.stream.sampler.batch_size * sum(r for _, r in self.family.phases(self.d_steps))
        self._stop_signal = None
        with logging_redirect_tqdm(), tqdm(total=self.steps, initial=self.step, desc=self.family.name, dynamic_ncols=True) as bar, \
                self._stopping_on_signals():
            while self.step < self.steps:
                logs = self.train_step(measure=(self.step + 1) % self.log_every == 0)
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                count, images = count + 1, images + batch_images
                bar.update(1)
                periodic = (self.log_every, self.sample_every, self.eval_every, self.checkpoint_every)
                if self._unchecked and (self.step == self.steps or self._stop_signal is not None or len(self._unchecked) >= 1024
                                        or any(n and self.step % n == 0 for n in periodic)):
                    self.check_finite()  # before anything logs, evaluates or saves these weights
                if self.step % self.log_every == 0 or self.step == self.steps:
                    elapsed = time.perf_counter() - tic
                    self._log_scalars({k: (v / count).item() for k, v in sums.items()}, images / elapsed, count / elapsed)
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in self.last_logs.items() if k.startswith("loss/")})
                    sums, count, images, tic = {}, 0, 0, time.perf_counter()
                if self.step % self.sample_every == 0 or self.step == self.steps:
                    self.preview()
                if self.eval_every and (self.step % self.eval_every == 0 or self.step == self.steps):
                    tic += self.evaluate(final=self.step == self.steps)  # not counted in images/s
                if self.step % self.checkpoint_every == 0 or self.step == self.steps:
                    self.save()
                if self._stop_signal is not None and self.step < self.steps:
                    path = self.save()
                    self.writer.flush()
                    raise Interrupted(self._stop_signal, self.step, path)
        self.writer.flush()
        return {**self.last_logs, **self.last_metrics}

    def _log_scalars(self, means: dict[str, float], images_per_s: float, steps_per_s: float) -> None:
        # grad norms are measured on the last step of the interval only
        means.update({"speed/images_per_s": images_per_s, "speed/steps_per_s": steps_per_s})
        means.update({f"lr/{p}": o.param_groups[0]["lr"] for p, o in self.optimizers.items()})
        if self.nan_policy == "skip":
            means["nonfinite/skipped_updates"] = self.skipped_updates
        for k, v in means.items():
            self.writer.add_scalar(k, v, self.step)
        self.last_logs = means
        log.info("step %d: %s", self.step, ", ".join(f"{k}={v:.4g}" for k, v in means.items()))

    # ---------------------------------------------------------------- samples
    def sampling_network(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.family.networks[self.family.sample_network]

    @contextmanager
    def _evaluating(self):
        """The sampling network (EMA copy if any) in eval mode, without gradients, on forked random
        generators: previews and metrics (taken at steps that differ between a resumed and an uninterrupted
        run) never shift the training's random streams."""
        net = self.sampling_network()
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                yield net
        finally:
            net.train(was_training)

    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Generate from ``inputs`` with the sampling network (EMA copy if any) in eval mode."""
        with self._evaluating() as net:
            return self.family.generate(inputs, net)

    def preview(self) -> Path:
        """Save the fixed-input samples (and the family's extra previews) as PNGs and TensorBoard images."""
        with self._evaluating() as net:
            samples = self.family.generate(self.fixed_inputs, net)
            extras = self.family.previews(net, self.fixed_inputs, self.preview_real.to(self.device))
        labels = self.fixed_inputs.get("label")
        nrow = int(labels.max()) + 1 if labels is not None else None
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        save_preview(samples, self.preview_real, path, self.writer, self.step, nrow=nrow)
        for tag, images in extras.items():
            save_preview(images, self.preview_real, self.run_dir / "samples" / f"{tag}_step_{self.step:07d}.png",
                         self.writer, self.step, tag=tag)
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
        log.info("step %d: %s", self.step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        value = metrics.get(self.best_metric)
        if value is not None and not math.isnan(value) and (
            self.best_value is None or (value > self.best_value if self.best_higher else value < self.best_value)
        ):
            self.best_value = value
            checkpoint.save({**self.state_dict(), "metrics": metrics}, self.run_dir / "checkpoints" / "best.pt")
        return time.perf_counter() - tic

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "family": self.family.name,
            "step": self.step,
            "networks": self.family.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "data": self.stream.state_dict(),
            "rng": checkpoint.rng_state(),
            "config": self.config_yaml,
            "best": self.best_value,
            "skipped_updates": self.skipped_updates,
        }

    def load_state_dict(self, state: dict, source: str = "the checkpoint") -> None:
        """Continue from ``state`` (``source`` names it in errors). TensorBoard events the interrupted run
        logged after this checkpoint are dropped (``purge_step``), so its curves do not double back."""
        if state.get("family", self.family.name) != self.family.name:
            raise ConfigError(f"{source} is of a {state['family']} run, not {self.family.name}: use a checkpoint of this model")
        checkpoint.restore(self.family, state["networks"], source)
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.scalers.items():
            s.load_state_dict(state["scalers"][k])
        for k, s in self.schedulers.items():  # checkpoints of older versions have none: resume at this step's lr
            if "schedulers" in state:
                s.load_state_dict(state["schedulers"][k])
            else:
                s.last_epoch = int(state["step"])
                for group, base in zip(s.optimizer.param_groups, s.base_lrs):
                    group["lr"] = base * s.lr_lambdas[0](s.last_epoch)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.stream.load_state_dict(state["data"])
        checkpoint.set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.best_value = state.get("best")
        self.skipped_updates = int(state.get("skipped_updates", 0))
        self.last_checkpoint = (self.run_dir / "checkpoints" / "last.pt", self.step)
        self.writer.close()
        self.writer = SummaryWriter(str(self.run_dir), purge_step=self.step + 1)  # events up to the checkpoint stay

    def save(self) -> Path:
        path = self.run_dir / "checkpoints" / "last.pt"
        checkpoint.save(self.state_dict(), path)
        self.last_checkpoint = (path, self.step)
        return path
