"""``gantrain-report DIR``: a sweep's jobs side by side.

DIR is a multirun folder (``gantrain -m …``, any Hydra launcher) or a ``gantrain-tune`` folder: each job folder
under it holds ``.hydra/overrides.yaml`` and TensorBoard events. The report, in ``DIR/report/`` (or ``--out``):
``report.csv`` (one row per job: every override, the final value of each metric, steps, status, seconds),
``report.md`` (the same table with the overrides all jobs share listed once above it) and one PNG per metric with
the metric over steps, one line per job."""

from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

from gantrain.hparams import NOT_RESULTS, job_record


@dataclass
class Job:
    """One job's record: its folder name, overrides {key: value as written}, scalar curves {tag: [(step,
    value)]}, steps done and asked for, and seconds from its first to its last event."""

    name: str
    overrides: dict[str, str]
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    steps: int = 0
    planned: int | None = None
    seconds: float = 0.0

    def final(self, tag: str) -> float | None:
        return self.curves[tag][-1][1] if tag in self.curves else None

    @property
    def status(self) -> str:
        return "done" if self.planned is not None and self.steps >= self.planned else "stopped"


def _order(folder: Path):
    number = re.match(r"\d+", folder.name)
    return (int(number.group()) if number else float("inf"), folder.name)


def read_job(folder: Path) -> Job:
    """A job's overrides (``.hydra``), scalars (every event file in its folder) and planned steps."""
    _, lines = job_record(folder)
    overrides = dict(line.lstrip("+~").split("=", 1) for line in lines if "=" in line)
    job = Job(folder.name, overrides)
    config = folder / ".hydra" / "config.yaml"
    if config.is_file():
        job.planned = OmegaConf.select(OmegaConf.load(config), "trainer.steps")
    events = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
    events.Reload()
    last_time = None
    for tag in events.Tags()["scalars"]:
        points = sorted((e.step, e.value, e.wall_time) for e in events.Scalars(tag))
        job.curves[tag] = [(step, value) for step, value, _ in points]
        job.steps = max(job.steps, points[-1][0])
        last_time = max(last_time or 0.0, max(t for *_, t in points))
    if last_time is not None:
        job.seconds = last_time - events.FirstEventTimestamp()
    return job


def read_sweep(folder: Path) -> list[Job]:
    jobs = [read_job(p) for p in sorted(folder.iterdir(), key=_order) if (p / ".hydra" / "overrides.yaml").is_file()]
    if not jobs:
        raise ValueError(f"{folder} holds no job folders (folders with .hydra/overrides.yaml): pass a multirun or gantrain-tune folder")
    return jobs


def metric_tags(jobs: Sequence[Job]) -> list[str]:
    """The tags that are results (loss terms, discriminator outputs, evaluation metrics), in first-seen order."""
    return list(dict.fromkeys(tag for job in jobs for tag in job.curves if not tag.startswith(NOT_RESULTS)))


def table(jobs: Sequence[Job], tags: Sequence[str], keys: Sequence[str]) -> tuple[list[str], list[list]]:
    header = ["job", *keys, *tags, "steps", "status", "seconds"]
    rows = [
        [job.name, *(job.overrides.get(k, "") for k in keys), *(job.final(t) for t in tags), job.steps, job.status, round(job.seconds, 1)]
        for job in jobs
    ]
    return header, rows


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value).replace("|", "\\|")


def plot(jobs: Sequence[Job], tag: str, path: Path) -> None:
    """``tag`` over steps, one line per job."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    for job in jobs:
        if tag in job.curves:
            steps, values = zip(*job.curves[tag])
            axes.plot(steps, values, marker="." if len(steps) < 30 else None, label=job.name)
    axes.set(xlabel="step", ylabel=tag, title=tag)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.savefig(path, dpi=100)


def write_report(folder: Path, out: Path, tags: Sequence[str] | None = None) -> Path:
    """Write report.csv, report.md and a PNG per metric of the sweep in ``folder`` into ``out``; the .md path."""
    jobs = read_sweep(folder)
    tags = list(tags) if tags else metric_tags(jobs)
    keys = list(dict.fromkeys(k for job in jobs for k in job.overrides))
    varying = [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]
    out.mkdir(parents=True, exist_ok=True)
    header, rows = table(jobs, tags, keys)
    with open(out / "report.csv", "w", newline="") as f:  # TensorBoard keeps float32: 7 significant digits
        csv.writer(f).writerows([header, *([f"{v:.7g}" if isinstance(v, float) else v for v in row] for row in rows)])
    header, rows = table(jobs, tags, varying)
    common = [f"`{k}={jobs[0].overrides[k]}`" for k in keys if k not in varying and k in jobs[0].overrides]
    lines = [f"# Sweep {folder}", "", f"{len(jobs)} jobs; every job: {' '.join(common) or 'no common overrides'}", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    lines += ["", "Final values: each metric's last logged value; seconds: from the job's first to its last event.", ""]
    for tag in tags:
        png = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag) + ".png"
        plot(jobs, tag, out / png)
        lines.append(f"![{tag}]({png})")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "report.md"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gantrain-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="a multirun folder (outputs/multirun/DATE/TIME) or a gantrain-tune folder")
    parser.add_argument("--out", default=None, help="where the report goes (default DIR/report)")
    parser.add_argument("--metrics", nargs="+", default=None, help="the tags to report (default: every loss and metric)")
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    try:
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder: pass a multirun folder, e.g. outputs/multirun/DATE/TIME")
        path = write_report(folder, Path(args.out) if args.out else folder / "report", args.metrics)
    except ValueError as err:
        print(f"gantrain-report: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
