"""The history of a training run, written beside its model: `history.csv` and `history.jsonl`
(one row per logged update or evaluation: the update `step`, losses, learning rate, held-out
metrics) and `history.png`, the loss curves (training and held-out) next to the held-out metrics,
drawn when matplotlib is installed (`pip install 'roberta3[plot]'`, imported only here and only
when a plot is drawn; without it the CSV alone). `pretrain` and `finetune` both write one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..fileio import atomic_write_text

__all__ = ["CSV", "JSONL", "PNG", "NO_PLOT", "write_history", "read_history", "plot_history", "RecordingTrainer"]

CSV, JSONL, PNG = "history.csv", "history.jsonl", "history.png"
NO_PLOT = f"no {PNG}: matplotlib is not installed (pip install 'roberta3[plot]'); {CSV} holds the numbers"


def _columns(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> list[str]:
    """`first` (those some row has, in that order), then every other key, sorted."""
    seen = {k for row in rows for k in row}
    return [k for k in first if k in seen] + sorted(seen - set(first))


def write_history(directory: str | os.PathLike, rows: Sequence[Mapping[str, Any]], *, first: Sequence[str] = ("step",),
                  losses: Sequence[str] = (), metrics: Sequence[str] = (), title: str = "", plot: bool = True) -> bool:
    """`history.csv` (columns `first`, then the others sorted; a value a row lacks is empty) and
    `history.jsonl` in `directory`, both replaced atomically; with `plot`, `history.png` too
    (`plot_history`). Returns whether the PNG was drawn: False when matplotlib is missing."""
    directory = Path(directory)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=_columns(rows, first), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(directory / CSV, text.getvalue())
    atomic_write_text(directory / JSONL, "".join(json.dumps(dict(row)) + "\n" for row in rows))
    return plot and plot_history(directory / PNG, rows, losses=losses, metrics=metrics, title=title)


def read_history(directory: str | os.PathLike) -> list[dict]:
    """The rows of `directory/history.jsonl` (typed values), or [] when there is none."""
    path = Path(directory) / JSONL
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not valid JSON ({e.msg})") from None
    return rows


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list, list]:
    """(steps, values) of the rows with a finite number under `key`."""
    points = [(row["step"], row[key]) for row in rows
              if isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool) and math.isfinite(row[key])]
    return [p[0] for p in points], [p[1] for p in points]


def plot_history(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], *, losses: Sequence[str],
                 metrics: Sequence[str], title: str = "") -> bool:
    """Draw `rows` into the PNG `path`: the `losses` columns against the update on the left, the
    `metrics` columns on the right; a series with a single point is a marker. Returns False,
    drawing nothing, when matplotlib is not installed. Uses matplotlib's object interface
    with the Agg canvas: no pyplot, so the caller's matplotlib backend is left as it was."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    figure = Figure(figsize=(11, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    for axes, keys, label in ((left, losses, "loss"), (right, metrics, "held-out metric")):
        drawn = False
        for key in keys:
            steps, values = _series(rows, key)
            if steps:
                axes.plot(steps, values, marker="o" if len(steps) < 40 else None, markersize=3, label=key)
                drawn = True
        axes.set_xlabel("update")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        if drawn:
            axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    target = Path(path)
    staging = target.with_name(f".{target.name}.tmp")
    try:
        figure.savefig(staging, format="png")
        os.replace(staging, target)  # never a half-written PNG under the final name
    finally:
        staging.unlink(missing_ok=True)
    return True


class RecordingTrainer:
    """A trainer that hands each update's loss and learning rate to `record(loss, lr)` and is
    otherwise the trainer it wraps (what `recipe.fit` calls goes through unchanged)."""

    def __init__(self, trainer, record):
        self._trainer, self._record = trainer, record

    def __getattr__(self, name):
        return getattr(self._trainer, name)

    def train_step(self, micro_batches, lr, total_items):
        loss = self._trainer.train_step(micro_batches, lr, total_items)
        self._record(float(loss), float(lr))
        return loss
