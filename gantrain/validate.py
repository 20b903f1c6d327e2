"""Checks of a composed config that need nothing but the config: each raises one ConfigError naming the key.

``check_values`` walks every literal value and compares it with the same key in the *reference* config (the
same group choices, no ``key=value`` overrides): a number where the default is a number, a boolean where it is
a boolean, a positive integer where the default is one (unless 0 means "off", ``ZERO_ALLOWED``), seeds in numpy's
range, fixed-length lists, no ``???`` left. ``check_added_keys`` refuses a ``+key=value`` that nothing reads:
keys may be added only to a node with ``_target_`` whose callable takes them, or under ``FREE_FORM`` nodes.
``check_image_size`` and ``check_writable`` catch what would otherwise surface only after heavy work.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import inspect
import os
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_method
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException
from torch import nn

from gantrain.errors import ConfigError
from gantrain.loop import distributed

MAX_SEED = 2**32 - 1  # numpy's seeds
# ints whose default is positive but where 0 is a valid choice
ZERO_ALLOWED = ("phase_images", "num_classes", "rows", "overlap")
FIXED_LENGTH = {"betas": 2}
# nodes whose keys are not in any default: what goes there is checked where it is used
FREE_FORM = ("optimizer.per_phase", "eval.features", "eval.metrics")
HYDRA_KEYS = ("_target_", "_convert_", "_recursive_", "_partial_", "_args_")
# built-in in-memory sets (8–32 px natively): upsampling further adds no detail and only fills memory
MAX_BUILTIN_IMAGE_SIZE = 128
IN_MEMORY_SOURCES = ("gantrain.data.digits.digits", "gantrain.data.torchvision_sets.torchvision_dataset")


def has_key(cfg: DictConfig, key: str) -> bool:
    """``cfg`` has the dotted ``key`` (a ``???`` value included)."""
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return isinstance(node, DictConfig) and name in node.keys()


def _leaves(node, prefix: str = "") -> Iterator[tuple[str, Any, bool]]:
    """(dotted key, value, is_interpolation) of every leaf; ``???`` gives the string '???', an interpolation that
    cannot resolve gives None."""
    items = node.items_ex(resolve=False) if isinstance(node, DictConfig) else enumerate(node._iter_ex(resolve=False))
    for key, _ in items:
        full = f"{prefix}{key}" if isinstance(node, DictConfig) else f"{prefix[:-1]}[{key}]"
        interpolation = OmegaConf.is_interpolation(node, key)
        if OmegaConf.is_missing(node, key):
            yield full, "???", interpolation
            continue
        try:
            value = node[key]
        except OmegaConfBaseException:
            yield full, None, interpolation
            continue
        if isinstance(value, (DictConfig, ListConfig)) and not interpolation:
            if isinstance(value, ListConfig) and not all(isinstance(v, (int, float)) for v in value):
                yield full, value, interpolation
            elif isinstance(value, ListConfig):  # a list built of interpolations is checked where they point
                yield full, [*value], any(OmegaConf.is_interpolation(value, i) for i in range(len(value)))
            elif len(value) == 0:  # an empty mapping is a value of its own ({} where a number belongs)
                yield full, {}, interpolation
            else:
                yield from _leaves(value, f"{full}.")
        else:
            yield full, OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value, interpolation


def is_number(value) -> bool:
    """An int or float (a YAML true/false is a bool, not a number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _free_form(key: str) -> bool:
    return any(key == f or key.startswith(f"{f}.") for f in FREE_FORM)


def _hint(key: str) -> str:
    return "PATH" if key.rsplit(".", 1)[-1] in ("root", "dir", "path", "cache_dir", "out") else "VALUE"


def check_missing(cfg: DictConfig) -> None:
    """A ``???`` left in the config is named with what to pass."""
    for key, value, interpolation in _leaves(cfg):
        if value == "???" and not interpolation:
            raise ConfigError(f"{key} is required: pass {key}={_hint(key)}")


def check_values(cfg: DictConfig, reference: DictConfig | None) -> None:
    """Every literal value of ``cfg`` (but trainer.*, which TrainerSettings checks) against ``reference``."""
    defaults = {key: value for key, value, _ in _leaves(reference)} if reference is not None else {}
    for key, value, interpolation in _leaves(cfg):
        if interpolation or key.startswith("trainer.") or _free_form(key):
            continue
        parent = key.rsplit(".", 1)[0]
        if parent != key and is_number(defaults.get(parent)):
            raise ConfigError(f"{parent} must be a number (the default is {defaults[parent]}), not a mapping")
        name = key.rsplit(".", 1)[-1]
        if name == "seed" and value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
                raise ConfigError(f"{key}={value!r} is a seed: use an integer from 0 to {MAX_SEED}")
            continue
        if name in FIXED_LENGTH and isinstance(value, (list, ListConfig)) and len(value) != FIXED_LENGTH[name]:
            raise ConfigError(f"{key}={list(value)} needs {FIXED_LENGTH[name]} values, e.g. {key}={defaults.get(key)}")
        default = defaults.get(key)
        if default is None or value == default:
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{key}={value!r} must be true or false")
        elif is_number(default):
            if not is_number(value):
                raise ConfigError(f"{key}={value!r} must be a number (the default is {default})")
            if isinstance(default, int) and default > 0 and name not in ZERO_ALLOWED and not is_positive_int(value):
                raise ConfigError(f"{key}={value!r} must be a positive integer (the default is {default})")
        elif isinstance(default, list) and default and all(is_number(v) for v in default):
            if not isinstance(value, list) or not all(is_number(v) for v in value):
                raise ConfigError(f"{key}={value!r} must be a list of numbers, e.g. {key}={default}")
            if all(is_positive_int(v) for v in default) and not all(is_positive_int(v) for v in value):
                raise ConfigError(f"{key}={value} must hold positive integers, e.g. {key}={default}")


def update_checked(cfg: DictConfig, overrides: Mapping[str, Any], whose: str) -> DictConfig:
    """A saved run's ``cfg`` with the command line's ``overrides`` applied: each key must be one of ``cfg``'s (else
    one line saying it is not a setting of ``whose``), each value is checked by ``check_values`` against the value
    it replaces, as a new run's are against the defaults."""
    reference = copy.deepcopy(cfg)
    for key, value in overrides.items():
        if not has_key(cfg, key):
            raise ConfigError(f"{key} is not a setting of {whose}")
        OmegaConf.update(cfg, key, value, merge=False)
    check_values(cfg, reference)
    return cfg


def check_creatable(key: str, path) -> None:
    """``check_writable``, then the folder ``path`` made and its new folders removed again: a file system that
    refuses new folders although ``access()`` allows them (``/proc``, a read-only mount seen by root) is found."""
    check_writable(key, path)
    here, missing = Path(os.path.abspath(Path(path).expanduser())), []
    while not here.exists():
        missing.append(here)
        here = here.parent
    try:
        for folder in reversed(missing):
            folder.mkdir()
    except OSError as err:
        raise ConfigError(f"{key}={str(path)!r} cannot be created ({err.strerror}); choose another {key}") from None
    finally:
        for folder in missing:
            if folder.is_dir():
                folder.rmdir()


def _accepted(target: str) -> tuple[set[str], bool]:
    """The keyword arguments ``target`` takes, and whether it takes any (``**kwargs``)."""
    try:
        params = inspect.signature(get_method(target)).parameters.values()
    except Exception:  # not importable or no signature: the build reports it
        return set(), True
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def check_added_keys(
    cfg: DictConfig, overrides: Sequence[str], groups: Sequence[str], extra: Sequence[str] = (), reference: DictConfig | None = None
) -> None:
    """``+key=value`` adds a key no default has: refused unless a ``_target_`` above it takes it as an argument,
    or it is under a FREE_FORM node; the nearest valid names are suggested. ``++key=value`` is checked the same
    where ``reference`` (the config without the command line's values) lacks the key, and is a plain
    ``key=value`` (its value checked by ``check_values``) where it has it. ``extra``: keys read besides these."""
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        known = override.is_force_add() and (reference is None or has_key(reference, key))
        added = override.is_add() or (override.is_force_add() and not known)
        if not added or key.split("@")[0] in groups or key.startswith("hydra.") or _free_form(key) or key in extra:
            continue
        parent, _, name = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        candidates = {str(k) for k in node.keys()} - {name} if isinstance(node, DictConfig) else set()
        if isinstance(node, DictConfig) and "_target_" in node:
            accepted, anything = _accepted(str(node._target_))
            if anything or name in accepted:
                continue
            candidates |= accepted
        candidates -= set(HYDRA_KEYS)
        close = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.6)
        prefix = f"{parent}." if parent else ""
        suggestion = f"; did you mean {' or '.join(prefix + c for c in close)}?" if close else ""
        if not parent and close and close[0] in groups:
            suggestion += f" (a group is chosen without +: {close[0]}={override.value()})"
        sign = "++" if override.is_force_add() else "+"
        raise ConfigError(f"{sign}{key}: {key} is not a setting gantrain reads{suggestion}")


def check_image_size(cfg: DictConfig) -> None:
    """The built-in in-memory image sets are refused above MAX_BUILTIN_IMAGE_SIZE before they are resized."""
    source = cfg.dataset.get("source") or {}
    size = cfg.dataset.get("image_size")
    if source.get("_target_") in IN_MEMORY_SOURCES and isinstance(size, int) and size > MAX_BUILTIN_IMAGE_SIZE:
        raise ConfigError(
            f"dataset.image_size={size}: dataset={cfg.dataset.name} is held in memory and is at most 32 px natively; "
            f"the largest useful size is {MAX_BUILTIN_IMAGE_SIZE} (use dataset=image_folder for larger images)"
        )


def check_writable(key: str, path) -> None:
    """``path`` can be created or written: its nearest existing ancestor is a writable folder (creates nothing)."""
    here = Path(os.path.abspath(Path(path).expanduser()))
    while not here.exists():
        here = here.parent
    if not here.is_dir():
        raise ConfigError(f"{key}={str(path)!r} cannot be a folder: {str(here)!r} is a file; choose another {key}")
    if not os.access(here, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={str(path)!r} is not writable ({str(here)!r} is read-only); choose another {key}")


def dataset_options_with(key: str, config_root: Path) -> list[str]:
    """The dataset options of ``config_root`` whose composed config sets ``dataset.<key>`` (for an error message)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    def composed(option: str):
        if GlobalHydra.instance().is_initialized():  # inside the app
            return compose("train", overrides=[f"dataset={option}"])
        with initialize_config_dir(config_dir=str(config_root), version_base="1.3"):
            return compose("train", overrides=[f"dataset={option}"])

    options = sorted(p.stem for p in (config_root / "dataset").glob("*.yaml"))
    return [o for o in options if key in composed(o).dataset]


def check_interpolations(cfg: DictConfig, config_root: Optional[Path] = None) -> None:
    """Every ``${…}`` resolves: one resolving to no key (``trainer.log_every=${oops}``) is refused naming it. A
    model reading a dataset key its dataset lacks (pix2pix's ``dataset.source_channels`` on digits) is told which
    dataset options of ``config_root`` have it."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as err:
        missing = re.search(r"Interpolation key '(dataset\.(\w+))' not found", str(err))
        if missing and str(err.full_key).startswith("model.") and config_root is not None:
            having = dataset_options_with(missing[2], Path(config_root))
            raise ConfigError(
                f"model={cfg.model.get('name')} reads {missing[1]}, which dataset={cfg.dataset.get('name')} does not have: "
                f"use a dataset that has it ({', '.join(having) or 'none of the built-in ones'})"
            ) from None
        raise ConfigError(f"{err.full_key}: {str(err).splitlines()[0]}; give it a value or a ${{key}} that exists") from None


def check_batch_statistics(family, batch_size: int) -> None:
    """Batch norm normalizes by a batch's own statistics, which one sample does not have."""
    if family is not None and batch_size < 2 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in family.modules()):
        raise ConfigError(
            f"trainer.batch_size={batch_size}: {family.name}'s batch norm needs at least 2 samples per batch; "
            f"use trainer.batch_size=2 or more"
        )


def check_command_line(argv: Sequence[str]) -> None:
    """What Hydra itself would refuse with a traceback or its usage text, refused in one ConfigError first: an
    override its grammar cannot read (``trainer.steps``, ``'model=[a'``), one without a key (``=1``), and a
    ``hydra.run.dir`` / ``hydra.sweep.dir`` that cannot be created. Options (``--help``, ``-m``, ``--cfg`` …)
    are left to Hydra, which reads them with the same argument parser."""
    from hydra._internal.utils import get_args_parser
    from hydra.errors import HydraException

    options = get_args_parser()
    options.exit_on_error = False
    try:
        args, _ = options.parse_known_args(list(argv))
    except (argparse.ArgumentError, SystemExit):  # a malformed option: Hydra's own usage message says which
        return
    if args.help or args.hydra_help or args.shell_completion:
        return
    parser = OverridesParser.create()
    for arg in args.overrides:
        try:
            override = parser.parse_override(arg)
        except HydraException as err:
            lines = [line for line in str(err).splitlines() if line and not line.startswith(("Error parsing", "See https"))]
            raise ConfigError(f"cannot read the override {arg!r} ({'; '.join(lines)}): write key=value, quoting the value") from None
        if not override.key_or_group:
            raise ConfigError(f"the override {arg!r} has no key: write key=value")
        if override.key_or_group.split(".")[0].lstrip("+~") == "explore":
            raise ConfigError(
                f"{arg!r}: the explore configs are gantrain-explore's (gantrain-explore ckpt=RUN explore=TOOL), not training's"
            )
        folder = "hydra.sweep.dir" if args.multirun else "hydra.run.dir"
        if args.multirun and distributed.launched():
            raise ConfigError("a sweep (-m) cannot run under torchrun: start one torchrun per run, or sweep without torchrun")
        if override.key_or_group == folder and isinstance(override.value(), str):
            check_creatable(folder, override.value().split("${")[0] or ".")
