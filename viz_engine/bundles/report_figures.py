"""How the model debugging report (``debugging_report.py``) names the slices of its held-out
split and writes accuracy changes. No torch here: the web page that shows a finished report
reads these without loading the engine."""

__all__ = ["SLICES", "points"]

SLICES = {
    "error_slice": "error slice",
    "feature_slice": "error-feature slice",
    "overall": "all held-out points",
}


def points(x: float) -> str:
    """An accuracy change (a fraction) in signed points, one decimal; never "-0.0"."""
    return f"{round(100 * x, 1) + 0.0:+.1f}"
