"""Charts for reports and artifacts: PNG bytes from plain series (matplotlib's Agg canvas, no pyplot state,
so charts can be drawn from any thread). Readable at 900×400 px: labelled axes with their units, a legend
when there is more than one line, a short note instead of an empty frame when there is no data."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.dates
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WIDTH_PX, HEIGHT_PX, DPI = 900, 400, 100
_DATES: Any = matplotlib.dates  # its locator and formatter classes have untyped constructors
#: Colour-blind-safe (Okabe–Ito), in the order lines are drawn.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def _figure(width_px: int, height_px: int) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _time_axis(ax: Axes, index: pd.Index) -> None:
    if isinstance(index, pd.DatetimeIndex):
        locator = _DATES.AutoDateLocator(minticks=4, maxticks=12)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(_DATES.ConciseDateFormatter(locator, tz=index.tz))


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def line_chart(title: str, series: Mapping[str, pd.Series], ylabel: str, *, xlabel: str = "time (UTC)",
               secondary: Mapping[str, pd.Series] | None = None, secondary_ylabel: str = "",
               width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX) -> bytes:
    """One line per series (name → values indexed by x, e.g. a DatetimeIndex); `secondary` series are drawn
    dashed against a second y axis on the right (another unit: a rate beside counts). Returns a PNG."""
    fig, ax = _figure(width_px, height_px)
    ax.set_title(title, fontsize=13)
    drawn = [(name, s) for name, s in series.items() if len(s)]
    extra = [(name, s) for name, s in (secondary or {}).items() if len(s)]
    if not drawn and not extra:
        _empty(ax, "no data")
        return _png(fig)
    handles = []
    for i, (name, s) in enumerate(drawn):
        handles += ax.plot(s.index, s.to_numpy(dtype=float), label=name, color=COLOURS[i % len(COLOURS)], linewidth=1.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    _time_axis(ax, (drawn or extra)[0][1].index)
    if extra:
        right = ax.twinx()
        for j, (name, s) in enumerate(extra, start=len(drawn)):
            handles += right.plot(s.index, s.to_numpy(dtype=float), label=name, color=COLOURS[j % len(COLOURS)],
                                  linewidth=1.5, linestyle="--")
        right.set_ylabel(secondary_ylabel)
        right.set_ylim(bottom=0)
    if len(handles) > 1:
        ax.legend(handles=handles, labels=[str(h.get_label()) for h in handles], loc="upper left", fontsize=9,
                  framealpha=0.85)
    return _png(fig)


def bar_chart(title: str, values: Mapping[str, float] | pd.Series, xlabel: str, *, horizontal: bool = True,
              ylabel: str = "", highlight: Sequence[str] = (), reference: tuple[float, str] | None = None,
              width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX) -> bytes:
    """One bar per label (in the order given; horizontal by default, for long labels such as routes);
    `xlabel` names the value axis with its unit. Labels in `highlight` get the second colour; `reference`
    (value, label) is drawn as a dashed line across the bars, e.g. a threshold. Returns a PNG."""
    fig, ax = _figure(width_px, height_px)
    ax.set_title(title, fontsize=13)
    items = list(values.items())
    if not items:
        _empty(ax, "no data")
        return _png(fig)
    labels = [_label(str(k)) for k, _ in items]
    numbers = [float(v) for _, v in items]
    colours = [COLOURS[1] if str(k) in highlight else COLOURS[0] for k, _ in items]
    if horizontal:
        ax.barh(labels[::-1], numbers[::-1], color=colours[::-1])
        ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.grid(True, axis="x", alpha=0.3)
        if reference is not None:
            ax.axvline(reference[0], color=COLOURS[7], linestyle="--", linewidth=1.2, label=reference[1])
    else:
        ax.bar(labels, numbers, color=colours)
        ax.set_ylabel(xlabel)
        if ylabel:
            ax.set_xlabel(ylabel)
        ax.grid(True, axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30)
        if reference is not None:
            ax.axhline(reference[0], color=COLOURS[7], linestyle="--", linewidth=1.2, label=reference[1])
    if reference is not None:
        ax.legend(loc="lower right", fontsize=9, framealpha=0.85)
    return _png(fig)


def _label(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
