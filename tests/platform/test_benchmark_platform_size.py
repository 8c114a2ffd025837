"""The platform-size benchmark (benchmarks/platform_size.py) on a tiny size: it measures every
figure it reports, and refuses to report times when a cached answer differs from a computed one."""

import pytest

from benchmarks import platform_size

pytestmark = pytest.mark.django_db
TINY = {"sizes": [("tiny", 2, 3, 4)], "export_size": ("tiny export", 2, 3, 4), "alpha_size": (5, 6)}


@pytest.mark.slow
def test_the_benchmark_reports_every_figure_on_a_tiny_study():
    out = platform_size.run(2, **TINY)
    (row,) = out["sizes"]
    for key in ("page_cold", "page_warm", "api_cold", "api_warm", "monitor"):
        assert row[key]["median_ms"] > 0 and row[key]["repeats"] == 2 and "body" not in row[key]
    assert row["responses"] == 2 * 3 * 5 and row["page_warm"]["queries"] > 0
    assert out["exports"]["responses"] == 24
    assert out["exports"]["responses_csv"]["streamed"] and out["exports"]["annotators_csv"]["streamed"]
    assert out["alpha"]["annotators"] == 5 and out["alpha"]["alpha_interval"] is not None
    assert set(out["meets_targets"]) == {"page_and_api_warm", "alpha", "exports_streamed"}


def test_the_benchmark_fails_when_cached_figures_differ_from_computed_ones(monkeypatch):
    import annotations.selectors as selectors

    real, seen = selectors._cached, set()

    def stale_on_second_reading(kind, condition, version, compute):
        value = real(kind, condition, version, compute)
        if kind == "condition" and (condition.pk, version) in seen:
            value = {**value, "alpha": -0.5}
        seen.add((condition.pk, version))
        return value

    monkeypatch.setattr(selectors, "_cached", stale_on_second_reading)
    with pytest.raises(platform_size.Disagreement):
        platform_size.run(2, **TINY)
