"""Generated override lists (issue 17): each either trains a step or is refused in one line, never a traceback.

Lists of one to three overrides on the tiny 2D config (bad_input_kit's POINTS): real keys given valid values,
wrong types, out-of-range numbers or odd strings; unknown keys, groups and group options; malformed override
text. Each list is composed as ``gantrain`` would and, when Hydra composes it, trained through
``gantrain.cli.train`` in a fresh folder. Allowed outcomes:

- a step trained (the run may ask for more; the first step is enough);
- a ``ConfigError`` of one line, with nothing written (the CLI prints ``gantrain: error: <line>``, exit 2),
  also from ``validate.check_command_line``, which reads the command line before Hydra does;
- Hydra's composition error (an unknown group option, a key not in the config, unparsable text), which the
  console prints as its message without a traceback.

A list that adds an unknown key (``+foo=1``, ``++foo=1``) must be refused: no part of gantrain would read it.
"""

from __future__ import annotations

import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

from hydra.errors import CompactHydraException
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import gantrain.cli
from gantrain.errors import ConfigError
from gantrain.trainer import NonFiniteLoss, Trainer

from bad_input_kit import POINTS, QUIET
from conftest import compose_config

SECONDS_PER_LIST = 20  # compose + one step of the tiny MLP take well under a second

# ------------------------------------------------------------------------------------ values
WORDS = st.sampled_from(["abc", "1e-3x", "True", "none", "cuda", "-", "0x10", "1,2"])
WRONG_TYPES = st.one_of(WORDS, st.sampled_from(["[]", "[1,2]", "[a]", "{}", "{a:1}", "true", "false", "null"]))
OUT_OF_RANGE = st.sampled_from(["-1", "0", "-0.5", "0.5", "1.5", "1e300", "-1e300", str(2**64), str(-(2**64)), "nan", "inf", "-inf"])
ODD_TEXT = st.one_of(
    st.sampled_from(["", " ", "  x  ", "a=b", "'", '"', "'quoted'", '"quoted"', "ü∂✓", "日本", "${oops}", "x" * 5000, "/" * 300]),
    st.text(min_size=0, max_size=12),
)


def small_ints(lo, hi):
    return st.integers(lo, hi).map(str)


def lists(item, lo=1, hi=3):
    return st.lists(item, min_size=lo, max_size=hi).map(lambda xs: "[" + ",".join(xs) + "]")


RATES = st.sampled_from(["0.0002", "1e-3", "0.01", "1"])
FRACTIONS = st.sampled_from(["0", "0.25", "0.5", "1", "1.0"])
BOOLS = st.sampled_from(["true", "false"])
# Real keys of the tiny 2D config and values they accept. Sizes stay small: a valid but huge one would
# allocate for real (2**64 and the like, among the out-of-range numbers, fail at once or are refused).
KEYS = {
    "seed": small_ints(0, 2**32 - 1),
    "trainer.steps": small_ints(1, 3),
    "trainer.d_steps": small_ints(1, 2),
    "trainer.batch_size": small_ints(1, 32),
    "trainer.accumulate": small_ints(1, 2),
    "trainer.log_every": small_ints(1, 10),
    "trainer.sample_every": small_ints(1, 10),
    "trainer.checkpoint_every": small_ints(1, 10),
    "trainer.num_samples": small_ints(1, 64),
    "trainer.eval_every": st.just("0"),
    "trainer.num_workers": st.just("0"),
    "trainer.device": st.sampled_from(["cpu", "auto"]),
    "trainer.amp": BOOLS,
    "trainer.amp_dtype": st.sampled_from(["bfloat16", "float16"]),
    "trainer.ema": st.sampled_from(["0", "0.5", "0.999"]),
    "trainer.lr_decay_start": FRACTIONS,
    "trainer.lr_decay_final": FRACTIONS,
    "trainer.grad_clip": st.sampled_from(["0", "1", "10.5"]),
    "trainer.nan_policy": st.sampled_from(["stop", "skip"]),
    "optimizer.lr": RATES,
    "optimizer.lr_g": RATES,
    "optimizer.lr_d": RATES,
    "optimizer.betas": lists(st.sampled_from(["0", "0.5", "0.9", "0.999"]), 2, 2),
    "model.latent_dim": small_ints(1, 8),
    "model.latent": st.just("normal"),
    "model.pack": small_ints(1, 2),
    "model.generator.hidden": lists(small_ints(1, 16)),
    "model.generator.batch_norm": BOOLS,
    "model.discriminator.hidden": lists(small_ints(1, 16)),
    "model.discriminator.pieces": small_ints(1, 5),
    "model.discriminator.dropout": FRACTIONS,
    "model.discriminator.minibatch_stddev": small_ints(0, 1),
    "dataset.source.n": small_ints(64, 512),
    "dataset.source.std": st.sampled_from(["0.05", "0.5", "1"]),
    "resume": st.just("''"),
    "override_resume": BOOLS,
}
# Options of each group that run offline on points (other datasets would download or need a folder).
GROUPS = {
    "loss": st.sampled_from(["nonsaturating", "minimax", "hinge", "lsgan", "wgan", "wgan_gp", "relativistic", "fgan_kl"]),
    "regularizer": st.sampled_from(["none", "gradient_penalty", "r1", "spectral_norm", "weight_clip", "orthogonal", "drift"]),
    "optimizer": st.sampled_from(["adam", "sgd", "rmsprop", "adam_wgan_gp"]),
    "dataset": st.sampled_from(["grid25", "ring8", "image_folder"]),
    "model": st.sampled_from(["mlp", "cgan", "dcgan"]),
}
UNKNOWN_KEYS = st.sampled_from(["foo", "modle", "trainer.stepz", "model.generator.hiden", "dataset.sorce.n", "optimizer.lrr", "seeed"])
UNKNOWN_OPTIONS = st.sampled_from(["nonsaturing", "MLP", "grid", "", "vae2", "ü"])


def quoted(text: str) -> str:
    """``text`` as one quoted value of Hydra's override grammar."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def value_for(key: str):
    return st.one_of(KEYS[key], KEYS[key], WRONG_TYPES, OUT_OF_RANGE, OUT_OF_RANGE, ODD_TEXT.map(quoted))  # unquoted: MALFORMED


REAL = st.sampled_from(sorted(KEYS)).flatmap(lambda key: value_for(key).map(lambda v: (key, f"{key}={v}", False)))
GROUP = st.sampled_from(sorted(GROUPS)).flatmap(
    lambda group: st.one_of(GROUPS[group], UNKNOWN_OPTIONS).map(lambda v: (group, f"{group}={v}", False))
)
UNKNOWN = st.tuples(UNKNOWN_KEYS, st.one_of(small_ints(0, 3), WORDS)).flatmap(
    lambda kv: st.sampled_from(
        [(kv[0], f"+{kv[0]}={kv[1]}", True), (kv[0], f"++{kv[0]}={kv[1]}", True), (kv[0], f"{kv[0]}={kv[1]}", False)]
    )
)
MALFORMED = st.one_of(
    st.sampled_from(["trainer.steps", "trainer.steps==1", "trainer..steps=1", "+", "~", "model=", "a b=1", "[1,2]", "=1", "model=[a"]),
    ODD_TEXT,
).map(lambda text: (None, text, False))
# mostly real keys: one malformed override makes the whole list a composition error
OVERRIDE = st.one_of(REAL, REAL, REAL, REAL, REAL, REAL, GROUP, GROUP, UNKNOWN, MALFORMED)


def command_line(generated) -> tuple[list[str], bool]:
    """The tiny run's overrides with the generated ones applied, as a user editing the command would: one
    replaces a base override of the same key, another group option drops the base's settings of that group.
    Also whether any adds an unknown key."""
    base = {o.split("=")[0]: o for o in [*POINTS, *QUIET, "trainer.steps=1", "trainer.device=cpu"]}
    extra = []
    for key, text, _ in generated:
        if key in GROUPS:
            base = {k: o for k, o in base.items() if not k.startswith(f"{key}.")}
        if key in base and not text.startswith("+"):
            base[key] = text
        else:
            extra.append(text)
    return [*base.values(), *extra], any(unknown for _, _, unknown in generated)


class _FirstStepDone(BaseException):
    """Raised as a second step starts: the run trained, whatever trainer.steps asked for."""


@contextmanager
def one_step_at_most():
    inner = Trainer.train_step

    def first_only(self, *args, **kwargs):
        if self.step >= 1:
            raise _FirstStepDone
        return inner(self, *args, **kwargs)

    Trainer.train_step = first_only
    try:
        yield
    finally:
        Trainer.train_step = inner


@contextmanager
def time_limit(seconds: int):
    def expired(signum, frame):
        raise TimeoutError(f"accepted, but no step done within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def outcome(overrides: list[str]) -> str:
    """'composition' | 'refused' | 'trained', or the exception the list raised (the test fails on it)."""
    try:
        gantrain.validate.check_command_line(overrides)  # what Hydra itself would refuse with a traceback
    except ConfigError as err:
        assert "\n" not in str(err), f"a refusal of several lines: {err}"
        return "refused"
    try:
        cfg = compose_config(overrides)
    except CompactHydraException:
        return "composition"
    with tempfile.TemporaryDirectory() as tmp:
        here = os.getcwd()
        os.chdir(tmp)  # anything written relative to the working directory lands in the example's folder
        before = snapshot(Path(tmp))
        try:
            with time_limit(SECONDS_PER_LIST), one_step_at_most():
                gantrain.cli.train(cfg, Path(tmp) / "run", overrides)
        except _FirstStepDone:
            return "trained"
        except (ConfigError, NonFiniteLoss) as err:  # the CLI prints each in one line, without a traceback
            assert "\n" not in str(err), f"a refusal of several lines: {err}"
            if isinstance(err, ConfigError):
                assert snapshot(Path(tmp)) == before, f"refused ({err}), but files were written"
            return "refused"
        finally:
            os.chdir(here)
    return "trained"


# The same 40 lists on every run, none stored; no shrinking (each try is a training run): a failing list is
# reported as generated, at most three overrides beyond the tiny run's.
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(OVERRIDE, min_size=1, max_size=3))
# lists that found a traceback before (issue 17), kept as explicit examples
@example([("trainer.batch_size", "trainer.batch_size=1", False)])  # batch norm on a batch of one
@example([("model.discriminator.minibatch_stddev", "model.discriminator.minibatch_stddev=0.5", False)])
@example([("trainer.log_every", "trainer.log_every=${oops}", False)])  # an interpolation to no key
@example([("dataset.source.std", "dataset.source.std={}", False)])  # a mapping reaching torch
@example([(None, "=1", False)])  # an override without a key: Hydra's ValueError
@example([("foo", "++foo=1", True)])  # ++ of a key nothing reads
def test_generated_overrides_train_a_step_or_are_refused_in_one_line(generated):
    overrides, adds_unknown_key = command_line(generated)
    result = outcome(overrides)
    assert not (adds_unknown_key and result == "trained"), "an unknown key was accepted and ignored"
