"""What the HTML reports share: a matplotlib figure without pyplot state, a PNG inlined as base64, ISO times,
and alarm states drawn over time.

Used by the drift, promotion and scaling reports; matplotlib is imported when a figure is made, so the
modules that import this stay cheap to import.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

STATE_LEVELS = {"OK": 0, "INSUFFICIENT_DATA": 1, "ALARM": 2}


def new_figure(width: float = 9.0, height: float = 3.0):
    """A figure on the Agg canvas (no pyplot: safe in workers and threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(figure)
    return figure


def png_base64(figure) -> str:
    """The figure as a PNG, base64-encoded for ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def times(values: list[str]) -> list[datetime]:
    return [datetime.fromisoformat(value) for value in values]


def draw_alarm_states(axes: Any, history: dict[str, list[dict[str, str]]], start: str, end: str,
                      label: Callable[[str], str] = lambda name: name[-40:]) -> None:
    """One row per alarm: its state as a step line from ``start`` to ``end`` (low OK, middle
    INSUFFICIENT_DATA, high ALARM), each change annotated. ``history`` maps an alarm name to its state
    changes ``{"time", "old_state", "new_state"}``, oldest first; ``label`` names a row."""
    for row, (name, items) in enumerate(sorted(history.items())):
        points = [(start, items[0]["old_state"] if items else "INSUFFICIENT_DATA")]
        points += [(item["time"], item["new_state"]) for item in items]
        points.append((end, items[-1]["new_state"] if items else "INSUFFICIENT_DATA"))
        levels = [row + 0.3 * STATE_LEVELS.get(state, 1) for _, state in points]
        axes.step(times([t for t, _ in points]), levels, where="post", label=name)
        for (time, state), level in zip(points[1:-1], levels[1:-1]):
            axes.annotate(state, (datetime.fromisoformat(time), level), fontsize=7)
    axes.set_yticks([row + 0.3 for row in range(len(history))], [label(name) for name in sorted(history)], fontsize=7)
    axes.set_title("per alarm: low = OK, middle = INSUFFICIENT_DATA, high = ALARM", fontsize=9)
