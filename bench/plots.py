"""Small PNG plots for the benchmark reports (matplotlib, Agg backend; a bench-only dependency)."""

from collections.abc import Sequence
from pathlib import Path

from django.conf import settings

IMAGE_DIR = Path(settings.BASE_DIR) / "docs" / "img"
SIZE_INCHES = (9, 5)
DPI = 100  # 900 x 500 pixels


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    figure, axes = pyplot.subplots(figsize=SIZE_INCHES, dpi=DPI)
    return pyplot, figure, axes


def _save(pyplot, figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)
    return path


def line_plot(
    path: Path,
    series: dict[str, list[tuple[float, float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    log_y: bool = False,
    log_x: bool = False,
    spans: Sequence[tuple[float, float, str]] = (),
) -> Path:
    """One line per series of (x, y) points; `spans` shades (start, end, label) x ranges, such
    as the window in which a fault was active."""
    pyplot, figure, axes = _figure()
    for label, points in series.items():
        ordered = sorted(points)
        axes.plot(
            [x for x, _ in ordered], [y for _, y in ordered], marker=".", label=label, linewidth=1.5
        )
    for start, end, label in spans:
        axes.axvspan(start, end, alpha=0.15, color="tab:red", label=label)
    if log_y:
        axes.set_yscale("log")
    if log_x:
        axes.set_xscale("log", base=2)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if series or spans:
        axes.legend(loc="best", fontsize="small")
    return _save(pyplot, figure, path)


def bar_plot(
    path: Path, values: dict[str, float], title: str, ylabel: str, *, log_y: bool = False
) -> Path:
    """One labelled bar per value, the value written above it."""
    pyplot, figure, axes = _figure()
    labels = list(values)
    bars = axes.bar(range(len(labels)), [values[label] for label in labels], color="tab:blue")
    axes.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 4 else 0, ha="right")
    axes.bar_label(bars, fmt="%.3g", fontsize="small")
    if log_y:
        axes.set_yscale("log")
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(True, axis="y", alpha=0.3)
    return _save(pyplot, figure, path)
