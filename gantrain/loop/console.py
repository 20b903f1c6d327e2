"""What the console shows while a run trains: a short line per log (the full one goes to the log file and
TensorBoard) and a progress bar that survives a terminal without a size.

The loop logs each record with its short form as ``extra={"console": …}``; ``ConsoleFormatter``, the console
handler's formatter (configs/train.yaml, ``hydra.job_logging``), prints that form, the file handler the message.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Iterable, Optional

from tqdm.auto import tqdm

WIDTH = 100  # characters of a short line, the time stamp aside
BAR_COLUMNS = 100  # the progress bar's width where the terminal reports none


def short_line(head: str, items: Iterable[tuple[str, float]], tail: str = "", width: int = WIDTH) -> str:
    """``head``, then ``name value`` items while they fit in ``width`` characters (an ellipsis for the rest),
    then ``tail``."""
    line, room = head, width - (len(tail) + 2 if tail else 0)
    for name, value in items:
        item = f"  {name} {value:.4g}"
        if len(line) + len(item) + 3 > room:
            line += "  …"
            break
        line += item
    return f"{line}  {tail}" if tail else line


def log_line(step: int, steps: int, means: dict[str, float]) -> str:
    """The console's form of a training log: the step, each loss term by its short name, images/s."""
    losses = [(k.split("/", 1)[1], v) for k, v in means.items() if k.startswith("loss/")]
    speed = means.get("speed/images_per_s")
    return short_line(f"step {step}/{steps}", losses, f"{speed:.0f} img/s" if speed is not None else "")


def eval_line(step: int, steps: int, metrics: dict[str, float], first: Optional[str] = None) -> str:
    """The console's form of an evaluation: the step, then the metrics (``first``, the best-checkpoint metric,
    leading) while they fit."""
    order = sorted(metrics, key=lambda k: k != first)
    return short_line(f"step {step}/{steps} eval:", ((k, metrics[k]) for k in order))


class ConsoleFormatter(logging.Formatter):
    """``[HH:MM:SS] message``: a record's short ``console`` form where it has one; warnings and errors name
    their level."""

    def __init__(self):
        super().__init__("[%(asctime)s] %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        short = getattr(record, "console", None)
        if short is not None or record.levelno >= logging.WARNING:
            message = short if short is not None else record.getMessage()
            if record.levelno >= logging.WARNING:
                message = f"{record.levelname}: {message}"
            record = logging.makeLogRecord({**record.__dict__, "msg": message, "args": ()})
        return super().format(record)


def terminal_columns(stream) -> int:
    """The columns of the terminal ``stream`` writes to; 0 when it is none or reports no size."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def progress_bar(total: int, initial: int, desc: str, file=None, disable: bool = False) -> tqdm:
    """tqdm on ``file`` (stderr), following the terminal's width where it reports one, else ``BAR_COLUMNS``
    wide (a terminal of size 0 × 0 would get an empty bar); ``disable``: no bar (ranks other than 0)."""
    file = file if file is not None else sys.stderr
    sized = terminal_columns(file) > 0
    return tqdm(
        total=total, initial=initial, desc=desc, file=file, dynamic_ncols=sized, ncols=None if sized else BAR_COLUMNS, disable=disable
    )
