"""Built-in *fusion* dataset: a vital-sign time series plus a static record, like MIMIC.

Each datapoint has

* ``series`` — ``(24, 5)`` float: 24 hourly time steps × 5 vital-sign channels
  (:data:`CHANNEL_NAMES`), smooth AR(1) noise (stationary std 0.6) plus planted patterns;
* ``static`` — ``(8,)`` float: 8 fields (:data:`FIELD_NAMES`); continuous fields are z-scores
  (standard normal), binary fields are 0/1;
* ``label`` — 0 ``"stable"`` or 1 ``"deteriorating"``.

The label follows a known *recipe* (:data:`RECIPE`) over three planted signals, so every
explanation can be checked against the truth atom by atom:

=================  =====================================================  ===================
signal             where it lives                                         logit contribution
=================  =====================================================  ===================
``series_bump``    ``resp_rate`` bump, steps 16–20 (present or not)       ``1.5 · (2·bump − 1)``
``static_lactate`` static field ``lactate``                               ``1.2 · lactate``
``interaction``    ``spo2`` level in steps 4–11 shifted by ``s = ±1``,    ``2.0 · s · (2·vent − 1)``
                   times static field ``on_ventilator`` (``vent``)
=================  =====================================================  ===================

``label = 1[sum of contributions + 0.5 · noise > 0]`` with ``noise ~ N(0, 1)`` stored per
example. The interaction term is an XOR of a series feature and a static field: a model
that adds a function of the series to a function of the static record (late fusion) cannot
represent it and tops out near 68 % accuracy, while the full recipe allows about 94 %.

Distractors that never affect the label: a bump of the same shape in ``heart_rate`` at a
random time; an *early* bump in ``resp_rate`` (steps ≤ 12; only the late window counts); a
±1 level shift of ``temperature`` in a random 8-step window; a ±1 level shift of
``systolic_bp`` in steps 14–21; the static fields ``age``, ``sex_male``, ``creatinine``,
``diabetic``, ``bmi`` and ``smoker``.

``ground_truth[signal]`` holds per-example boolean masks ``{"series": (n, 24, 5),
"static": (n, 8)}`` of the elements each signal is read from (for ``series_bump`` the
window is marked whether or not the bump is present: its absence is evidence too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viz_engine.adapters import AdapterError

__all__ = [
    "N_STEPS",
    "CHANNEL_NAMES",
    "FIELD_NAMES",
    "CLASS_NAMES",
    "SIGNALS",
    "RECIPE",
    "SPLITS",
    "FusionData",
    "generate",
    "load_split",
    "recipe_contributions",
]

N_STEPS = 24
CHANNEL_NAMES = ("heart_rate", "resp_rate", "spo2", "temperature", "systolic_bp")
FIELD_NAMES = (
    "age", "sex_male", "lactate", "creatinine", "diabetic", "bmi", "smoker", "on_ventilator",
)
BINARY_FIELDS = ("sex_male", "diabetic", "smoker", "on_ventilator")
CLASS_NAMES = ("stable", "deteriorating")
SIGNALS = ("series_bump", "static_lactate", "interaction")

RECIPE: dict[str, Any] = {
    "series_bump": {
        "channel": "resp_rate", "steps": (16, 20), "amplitude": 2.0, "weight": 1.5,
        "term": "weight * (2 * bump - 1), bump in {0, 1}",
    },
    "static_lactate": {"field": "lactate", "weight": 1.2, "term": "weight * lactate"},
    "interaction": {
        "channel": "spo2", "steps": (4, 11), "shift": 1.0, "field": "on_ventilator",
        "weight": 2.0, "term": "weight * s * (2 * on_ventilator - 1), s in {-1, +1}",
    },
    "noise_scale": 0.5,
    "bias": 0.0,
    "label": "1 if sum(terms) + bias + noise_scale * noise > 0 else 0",
}

# split -> (size, seed); fixed so every run sees the same data
SPLITS = {"train": (16000, 1001), "val": (1000, 1002), "test": (2000, 1003)}

_BUMP_SHAPE = np.array([0.5, 0.85, 1.0, 0.85, 0.5])
_AR_PHI = 0.6
_AR_STD = 0.6


@dataclass
class FusionData:
    """``n`` generated datapoints with their planted ground truth (NumPy arrays).

    series:        ``(n, 24, 5)`` float32 vital signs.
    static:        ``(n, 8)`` float32 static fields.
    labels:        ``(n,)`` int64 class indices into :data:`CLASS_NAMES`.
    contributions: ``(n, 3)`` float64 logit contribution of each of :data:`SIGNALS`.
    noise:         ``(n,)`` float64 standard-normal label noise (scaled by ``noise_scale``).
    latents:       name -> ``(n,)`` array: ``bump`` (0/1), ``spo2_shift`` (±1), and the
                   distractors' draws (``hr_bump_start``, ``rr_early_bump_start`` (-1: none) …).
    ground_truth:  signal -> {"series": bool ``(n, 24, 5)``, "static": bool ``(n, 8)``}.
    seed:          the generator seed.
    """

    series: np.ndarray
    static: np.ndarray
    labels: np.ndarray
    contributions: np.ndarray
    noise: np.ndarray
    latents: dict[str, np.ndarray]
    ground_truth: dict[str, dict[str, np.ndarray]]
    seed: int | None = None
    class_names: tuple[str, ...] = CLASS_NAMES
    channel_names: tuple[str, ...] = CHANNEL_NAMES
    field_names: tuple[str, ...] = FIELD_NAMES
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def logits(self) -> np.ndarray:
        """``(n,)`` the recipe's noisy logit; ``labels == (logits > 0)``."""
        return self.contributions.sum(1) + RECIPE["bias"] + RECIPE["noise_scale"] * self.noise

    def subset(self, index) -> "FusionData":
        """The rows ``index`` (a slice, int array or bool mask) as a new :class:`FusionData`."""
        idx = np.arange(len(self))[index]
        return FusionData(
            series=self.series[idx],
            static=self.static[idx],
            labels=self.labels[idx],
            contributions=self.contributions[idx],
            noise=self.noise[idx],
            latents={k: v[idx] for k, v in self.latents.items()},
            ground_truth={s: {m: a[idx] for m, a in gt.items()} for s, gt in self.ground_truth.items()},
            seed=self.seed,
            meta=dict(self.meta),
        )

    def example(self, i: int) -> dict[str, Any]:
        """Datapoint ``i`` as a dict: ``series (24, 5)``, ``static (8,)``, ``label``,
        ``contributions (3,)`` and ``ground_truth`` (signal -> modality -> mask)."""
        return {
            "series": self.series[i],
            "static": self.static[i],
            "label": int(self.labels[i]),
            "contributions": self.contributions[i],
            "ground_truth": {s: {m: a[i] for m, a in gt.items()} for s, gt in self.ground_truth.items()},
        }

    def __getitem__(self, i):
        if isinstance(i, (int, np.integer)):
            return self.example(int(i))
        return self.subset(i)


def recipe_contributions(bump: np.ndarray, lactate: np.ndarray, spo2_shift: np.ndarray,
                         on_ventilator: np.ndarray) -> np.ndarray:
    """``(n, 3)`` logit contribution of each signal in :data:`SIGNALS`, from the latents."""
    r = RECIPE
    return np.stack([
        r["series_bump"]["weight"] * (2.0 * bump - 1.0),
        r["static_lactate"]["weight"] * lactate,
        r["interaction"]["weight"] * spo2_shift * (2.0 * on_ventilator - 1.0),
    ], axis=1)


def _ar_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 24, 5)`` stationary AR(1) noise with coefficient 0.6 and std 0.6."""
    innov = rng.standard_normal((n, N_STEPS, len(CHANNEL_NAMES))) * _AR_STD * np.sqrt(1 - _AR_PHI**2)
    out = np.empty_like(innov)
    out[:, 0] = rng.standard_normal((n, len(CHANNEL_NAMES))) * _AR_STD
    for t in range(1, N_STEPS):
        out[:, t] = _AR_PHI * out[:, t - 1] + innov[:, t]
    return out


def _add_bump(series: np.ndarray, rows: np.ndarray, channel: int, starts: np.ndarray, amp: float) -> None:
    width = len(_BUMP_SHAPE)
    for r, s in zip(rows, starts):
        series[r, s:s + width, channel] += amp * _BUMP_SHAPE


def generate(n: int, seed: int) -> FusionData:
    """``n`` datapoints drawn with ``numpy.random.default_rng(seed)`` (same seed, same data)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise AdapterError(f"n must be a non-negative int, got {n!r}")
    rng = np.random.default_rng(seed)
    ch = {name: i for i, name in enumerate(CHANNEL_NAMES)}
    fi = {name: i for i, name in enumerate(FIELD_NAMES)}
    width = len(_BUMP_SHAPE)

    # static record
    static = rng.standard_normal((n, len(FIELD_NAMES)))
    for name, p in (("sex_male", 0.5), ("diabetic", 0.3), ("smoker", 0.25), ("on_ventilator", 0.5)):
        static[:, fi[name]] = (rng.random(n) < p).astype(float)

    # latents of the planted signals and the distractors
    bump = (rng.random(n) < 0.5).astype(np.int64)
    spo2_shift = rng.choice(np.array([-1, 1]), size=n)
    hr_start = np.where(rng.random(n) < 0.5, rng.integers(0, N_STEPS - width + 1, n), -1)
    rr_early_start = np.where(rng.random(n) < 0.3, rng.integers(0, 13 - width + 1, n), -1)
    temp_start = rng.integers(0, N_STEPS - 8 + 1, n)
    temp_shift = rng.choice(np.array([-1, 1]), size=n)
    sbp_shift = rng.choice(np.array([-1, 1]), size=n)

    # series
    series = _ar_noise(rng, n)
    rb = RECIPE["series_bump"]
    b0, b1 = rb["steps"]
    rows = np.flatnonzero(bump == 1)
    _add_bump(series, rows, ch[rb["channel"]], np.full(len(rows), b0), rb["amplitude"])
    ri = RECIPE["interaction"]
    i0, i1 = ri["steps"]
    series[:, i0:i1 + 1, ch[ri["channel"]]] += ri["shift"] * spo2_shift[:, None]
    rows = np.flatnonzero(hr_start >= 0)
    _add_bump(series, rows, ch["heart_rate"], hr_start[rows], rb["amplitude"])
    rows = np.flatnonzero(rr_early_start >= 0)
    _add_bump(series, rows, ch["resp_rate"], rr_early_start[rows], rb["amplitude"])
    steps = np.arange(N_STEPS)[None, :]
    in_temp = (steps >= temp_start[:, None]) & (steps < temp_start[:, None] + 8)
    series[:, :, ch["temperature"]] += in_temp * temp_shift[:, None]
    series[:, 14:22, ch["systolic_bp"]] += sbp_shift[:, None]

    # label from the recipe
    contributions = recipe_contributions(
        bump, static[:, fi["lactate"]], spo2_shift, static[:, fi["on_ventilator"]]
    )
    noise = rng.standard_normal(n)
    logit = contributions.sum(1) + RECIPE["bias"] + RECIPE["noise_scale"] * noise
    labels = (logit > 0).astype(np.int64)

    # ground-truth masks
    def masks() -> dict[str, np.ndarray]:
        return {
            "series": np.zeros((n, N_STEPS, len(CHANNEL_NAMES)), dtype=bool),
            "static": np.zeros((n, len(FIELD_NAMES)), dtype=bool),
        }

    gt = {s: masks() for s in SIGNALS}
    gt["series_bump"]["series"][:, b0:b1 + 1, ch[rb["channel"]]] = True
    gt["static_lactate"]["static"][:, fi[RECIPE["static_lactate"]["field"]]] = True
    gt["interaction"]["series"][:, i0:i1 + 1, ch[ri["channel"]]] = True
    gt["interaction"]["static"][:, fi[ri["field"]]] = True

    return FusionData(
        series=series.astype(np.float32),
        static=static.astype(np.float32),
        labels=labels,
        contributions=contributions,
        noise=noise,
        latents={
            "bump": bump,
            "spo2_shift": spo2_shift,
            "hr_bump_start": hr_start,
            "rr_early_bump_start": rr_early_start,
            "temperature_shift_start": temp_start,
            "temperature_shift": temp_shift,
            "systolic_bp_shift": sbp_shift,
        },
        ground_truth=gt,
        seed=seed,
    )


def load_split(split: str) -> FusionData:
    """The fixed ``"train"`` (8000), ``"val"`` (1000) or ``"test"`` (2000) split."""
    if split not in SPLITS:
        raise AdapterError(f"split={split!r} is not one of {tuple(SPLITS)}")
    n, seed = SPLITS[split]
    data = generate(n, seed)
    data.meta["split"] = split
    return data
