"""How every page and export writes a figure: one rounding for all.

Python's ``f"{x:.2f}"`` rounds the binary float half to even (3.625 → "3.62") where Django's
``floatformat`` rounds the decimal written half up (3.63): the same confidence read 3.62 in
the summary table and 3.63 on the concepts page. ``figure`` rounds as a reader does, the
decimal written half away from zero, and never writes a negative zero."""

import math
from decimal import ROUND_HALF_UP, Decimal


def figure(value, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals; "" for what is no number (None, "")."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(number):
        return str(number)
    rounded = Decimal(repr(number)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{rounded.copy_abs() if rounded.is_zero() else rounded:f}"


def plus_minus(stat: dict, scale: float = 1.0, digits: int = 1) -> str:
    """A ``mean_std`` figure as "mean ± std" (× ``scale``), or "–" when there is none."""
    if stat["mean"] is None:
        return "–"
    return f"{figure(stat['mean'] * scale, digits)} ± {figure(stat['std'] * scale, digits)}"
