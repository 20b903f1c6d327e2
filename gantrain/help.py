"""``gantrain --help``: what a person reads before the first run.

Every description comes from where the thing is declared: an option's from the comment at the top of its YAML
file (its first sentence), a ``trainer.*`` setting's from its comment in gantrain/settings.py, an ``eval.*`` or
top-level key's from its comment in configs/train.yaml. Values are those of the composed config (with the
command line's overrides), resolved. ``gantrain --cfg job`` prints the full config.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path
from typing import Iterator, Sequence

from omegaconf import OmegaConf

from gantrain.settings import TrainerSettings

WIDTH = 110
GROUPS = {  # the config groups, in the order a person chooses them, and what each chooses
    "model": "the method: its networks, training family and paper's settings",
    "dataset": "the data (built-in sets need no download; *_folder options read your own images)",
    "loss": "the adversarial loss of GAN models",
    "regularizer": "penalties and constraints of GAN models; several: regularizer=[spectral_norm,r1]",
    "optimizer": "one optimizer per phase; optimizer.lr_g / lr_d set one network's rate",
    "experiment": "presets over all groups that reproduce a paper's setting",
}
HEADER = """\
gantrain: train, evaluate and explore generative image models from composable configs.

Usage: gantrain [GROUP=OPTION …] [KEY=VALUE …]   e.g. gantrain model=stylegan loss=wgan_gp trainer.steps=3000
       gantrain -m KEY=A,B …                       a sweep: one run directory per combination
Runs are written under outputs/DATE/TIME/ (samples/, checkpoints/, gantrain.log, TensorBoard events);
watch them with: tensorboard --logdir outputs"""
COMMANDS = [
    ("gantrain resume=RUN", "continue a run in its own folder from RUN/checkpoints/last.pt, exactly"),
    ("gantrain resume=RUN override_resume=true KEY=VALUE", "continue it with a changed setting (refused without the flag)"),
    ("gantrain-eval ckpt=RUN [out=FILE] [eval.KEY=VALUE …]", "every metric of a checkpoint, written to RUN/metrics.json"),
    ("gantrain-translate ckpt=RUN input=DIR output=DIR", "translate a folder with a trained image-to-image model"),
    ("gantrain --cfg job [OVERRIDES …]", "the full composed config (add --resolve to fill in interpolations)"),
    ("gantrain --hydra-help", "Hydra's own options (multirun launchers, shell completion, …)"),
    ("HYDRA_FULL_ERROR=1 gantrain …", "the full traceback instead of the one-line error"),
]
ABBREVIATIONS = ("al", "Eq", "Sec", "App", "e.g", "i.e", "vs", "Fig", "cf")


def first_sentence(text: str) -> str:
    """``text`` up to its first full stop (not one of an abbreviation such as "et al.")."""
    for match in re.finditer(r"\.(\s+|$)", text):
        if not text[: match.start()].endswith(ABBREVIATIONS):
            return text[: match.start() + 1]
    return text


def option_description(path: Path) -> str:
    """The first sentence of the comment block at the top of an option's YAML file (``@package`` lines aside)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            lines.append(line.lstrip("#").strip())
    return first_sentence(" ".join(lines))


def setting_descriptions() -> dict[str, str]:
    """Each ``trainer.*`` setting's comment in gantrain/settings.py."""
    source = inspect.getsource(TrainerSettings)
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s+(\w+): \w+ = [^#\n]*#(.*)$", source, re.M)}


def yaml_comments(path: Path, block: str = "") -> dict[str, str]:
    """Comments of the keys of configs/train.yaml under ``block`` (top level when empty), by dotted key:
    ``key: value  # comment`` and comment lines that continue it."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    last, inside = None, not block
    for line in path.read_text().splitlines():
        key = re.match(r"^(\s*)([\w]+):\s*([^#]*?)\s*(?:#\s?(.*))?$", line)
        if key:
            indent = len(key.group(1))
            if indent == 0:
                inside = not block or key.group(2) == block
                stack = [] if not block else [(0, block)]
                if block:
                    continue
            if not inside:
                continue
            stack = [(i, k) for i, k in stack if i < indent or (i == 0 and block)]
            stack.append((indent, key.group(2)))
            last = ".".join(k for _, k in stack)
            comments[last] = (key.group(4) or "").strip()
        elif inside and last and re.match(r"^\s+#", line):
            comments[last] = f"{comments[last]} {line.strip().lstrip('#').strip()}".strip()
        elif not line.strip():
            continue
        else:
            last = None
    return comments


def _rows(rows: Sequence[tuple[str, str]], indent: int = 2, one_line: bool = False) -> Iterator[str]:
    """Two aligned columns, the second wrapped to WIDTH (or shortened to one line)."""
    width = min(max(len(name) for name, _ in rows), 34) + 2
    for name, text in rows:
        lead = " " * indent + name.ljust(width)
        if len(lead) > indent + width:  # a long name gets its own line
            yield lead.rstrip()
            lead = " " * (indent + width)
        if one_line:
            text = textwrap.shorten(text, WIDTH - len(lead), placeholder=" …")
        wrapped = textwrap.wrap(text, WIDTH - len(lead)) or [""]
        yield (lead + wrapped[0]).rstrip()
        yield from (" " * len(lead) + more for more in wrapped[1:])


def _value(value) -> str:
    """A value as it is written on the command line."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value).replace("'", "").replace(" ", "")


def help_text(config_dir: Path, cfg) -> str:
    """The help for the composed config ``cfg`` (resolved values) of the configs in ``config_dir``."""
    choices = dict(re.findall(r"^\s+- (\w+): (\w+)", (config_dir / "train.yaml").read_text(), re.M))
    out = [HEADER, "", "Config groups (GROUP=OPTION):"]
    for group, meaning in GROUPS.items():
        default = choices.get(group, "null")
        if group == "regularizer" and "regularizer" in cfg:  # `tuned` stands for what this command line builds
            default += f"; here: {', '.join(cfg.regularizer) or 'none'}"
        out += ["", f"{group}: {meaning} (default: {default})"]
        options = sorted(config_dir.glob(f"{group}/*.yaml"))
        out += _rows([(p.stem, option_description(p)) for p in options], one_line=True)
    out += ["", "Bases under GROUP/base/ are shared parts of a group's options, not options to choose.", ""]
    out += ["Top-level keys (KEY=VALUE):"]
    top = yaml_comments(config_dir / "train.yaml")
    out += _rows([(f"{k}={_value(cfg.get(k))}", top.get(k, "")) for k in ("seed", "resume", "override_resume")])
    trainer = OmegaConf.to_container(cfg.trainer, resolve=True)
    meanings = setting_descriptions()
    out += ["", "Training loop (values for this command line; every setting is declared in gantrain/settings.py):"]
    out += _rows([(f"trainer.{k}={_value(v)}", meanings.get(k, "")) for k, v in trainer.items()])
    evaluation = yaml_comments(config_dir / "train.yaml", "eval")
    values = {k: OmegaConf.select(cfg, k) for k in evaluation}
    leaves = [(k, v) for k, v in values.items() if not OmegaConf.is_config(v)]
    out += ["", "Evaluation (also read by gantrain-eval):"]
    out += _rows([(f"{k}={_value(OmegaConf.to_container(v) if OmegaConf.is_config(v) else v)}", evaluation[k]) for k, v in leaves])
    out += ["", "Model, dataset, loss … keys: gantrain GROUP=OPTION --cfg job lists them with their values.", ""]
    out += ["Other commands:"]
    out += _rows(COMMANDS)
    return "\n".join(out) + "\n"


def print_help(config_dir: Path, overrides: Sequence[str] = ()) -> None:
    """Print the help for the config that ``overrides`` compose (the defaults if they do not compose)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()  # the command's own composition, whatever was initialized before
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        try:
            cfg = compose("train", overrides=list(overrides))
            OmegaConf.to_container(cfg.trainer, resolve=True)
        except Exception:  # noqa: BLE001 - a command line that does not compose still gets the default help
            cfg = compose("train")
    print(help_text(config_dir, cfg), end="")
