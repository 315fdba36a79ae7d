"""``mhealth_standin``: a labelled SYNTHETIC stand-in for UCI MHEALTH in the paper's per-time-step form.

UCI MHEALTH (the ``health`` preset's data) is not reachable from these machines, so the Health experiments
run on this generator instead. It is **not MHEALTH** and its numbers say nothing about MHEALTH; it has the
same interface as ``mhealth`` in paper mode, so the preset, the topology and the firmware are unchanged:
x (N, 23) float32 in MHEALTH's column order and sensor groups (chest acc + 2 ECG leads, ankle acc/gyro/mag,
arm acc/gyro/mag), 13 classes with class 0 the unused null class and labels 1..12, features raw and
truncated toward zero like the paper's ``np.savetxt(fmt="%d")`` (paper mode does not standardise).

How one sample (one 50 Hz time step) is made, so that the task needs a non-linear model:

* each activity has, per sensor position, a posture (a pitch of the sensor about an axis at right angles
  to gravity), a swing of that pitch over the activity's cycle (sinusoidal for gaits, one-sided for bends
  and arm raises), a cadence and an amplitude of dynamic acceleration; a time step is a uniformly drawn
  phase of the cycle, so a gait is a ring around its posture, not a blob (a class mean is a poor summary);
* accelerometer = gravity (9.81 m/s²) rotated by the pitch + dynamic acceleration; gyroscope = the pitch
  rate (small, mostly truncated to 0 or ±1 as the real logs' gyro columns are); magnetometer = an inclined
  field of 2.5 units rotated by the pitch, with a random heading per recording session; ECG = a QRS/T
  waveform at a random heart phase plus motion artefacts that grow with the activity's intensity;
* "subjects" (10) differ by a sensor mounting rotation per position, per-channel gains and offsets and an
  ECG gain; each (subject, activity) session scales the activity's intensity by its own factor, so jogging
  and running, walking and climbing stairs, standing and arm raises overlap; sensor noise on every channel
  (``noise`` scales it).

Samples are drawn independently (sessions' parameters are shared), every subject appears in every split,
as in paper mode's random split; "Jump front & back" is a third as frequent as the others, as in MHEALTH.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from host.ml.datasets.core import Dataset, DatasetOptionError
from host.ml.datasets.mhealth import ACTIVITY_NAMES, FEATURE_GROUPS, N_FEATURES

GRAVITY = 9.81
MAG_FIELD = 2.5
MAG_INCLINATION = np.radians(60.0)
SUBJECTS = 10
POSITIONS = ("chest", "ankle", "arm")
#: Per position: accelerometer reading (unit vector) of the upright neutral pose, the pitch axis (at right
#: angles to it) and the phase lag of the position in a gait cycle (arm swings against the leg).
NEUTRAL = {"chest": (-1.0, 0.0, 0.0), "ankle": (0.0, -1.0, 0.0), "arm": (-0.88, -0.47, 0.0)}
PITCH_AXIS = {"chest": (0.0, 1.0, 0.0), "ankle": (1.0, 0.0, 0.0), "arm": (0.0, 0.0, 1.0)}
LAG = {"chest": 0.0, "ankle": np.pi / 2, "arm": np.pi}

#: Per activity 1..12: (posture deg, swing deg, dynamic m/s²) for chest, ankle, arm; one-sided swing (bends,
#: raises: the pitch goes from the posture to posture + swing and back); cadence Hz; intensity 0..10.
ACTIVITIES = (
    # posture (c, an, ar)  swing (c, an, ar)  dynamic (c, an, ar)  one-sided cadence intensity
    ((0, 0, 0), (2, 2, 3), (0.2, 0.2, 0.3), False, 0.3, 0.0),       # 1 standing still
    ((-15, 20, 80), (2, 3, 4), (0.2, 0.2, 0.3), False, 0.3, 0.0),    # 2 sitting and relaxing
    ((90, 85, 95), (2, 3, 5), (0.2, 0.2, 0.3), False, 0.3, 0.0),     # 3 lying down
    ((0, 0, 0), (5, 25, 20), (2.5, 5.0, 3.0), False, 1.8, 3.0),      # 4 walking
    ((8, 10, 0), (5, 30, 12), (2.8, 5.5, 2.5), False, 1.5, 4.0),     # 5 climbing stairs
    ((0, 0, 0), (80, 3, 70), (0.8, 0.3, 1.0), True, 0.4, 2.0),       # 6 waist bends forward
    ((0, 0, 0), (3, 2, 150), (0.3, 0.2, 1.0), True, 0.4, 1.5),       # 7 frontal elevation of arms
    ((0, 0, 0), (30, 40, 30), (1.5, 1.5, 1.0), True, 0.5, 3.0),      # 8 knees bending (crouching)
    ((25, 15, 60), (3, 35, 5), (1.0, 3.0, 1.5), False, 1.2, 5.0),    # 9 cycling
    ((3, 0, 60), (6, 40, 25), (6.0, 10.0, 6.0), False, 2.6, 7.0),    # 10 jogging
    ((5, 0, 70), (8, 50, 30), (8.0, 13.0, 8.0), False, 3.0, 9.0),    # 11 running
    ((0, 0, 20), (10, 15, 20), (10.0, 12.0, 7.0), False, 1.5, 9.0),  # 12 jump front & back
)
#: Relative frequency of activities 1..12 (MHEALTH has about a third as much jumping as anything else).
WEIGHTS = np.array([3.0] * 11 + [1.0])


def _unit(v: tuple[float, ...]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues' rotation of each row of ``v`` (N, 3) about one fixed unit ``axis`` by ``angle`` (N,) rad."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return v * c + np.cross(axis, v) * s + axis * (v @ axis)[:, None] * (1 - c)


def _mountings(rng: np.random.Generator) -> np.ndarray:
    """(SUBJECTS, positions, 3, 3) small random rotations: how each subject wore each sensor (~10°)."""
    out = np.empty((SUBJECTS, len(POSITIONS), 3, 3))
    for s in range(SUBJECTS):
        for p in range(len(POSITIONS)):
            axis = _unit(tuple(rng.normal(size=3)))
            out[s, p] = _rotate(np.eye(3), axis, np.full(3, np.radians(rng.normal(0.0, 10.0)))).T
    return out


def _position(p: int, name: str, act: np.ndarray, phase: np.ndarray, scale: np.ndarray, heading: np.ndarray,
              mount: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Accelerometer, gyroscope, magnetometer (N, 9) of one sensor position; ``act`` indexes ACTIVITIES."""
    table = ACTIVITIES
    posture = np.radians([table[a][0][p] for a in range(12)])[act]
    swing = np.radians([table[a][1][p] for a in range(12)])[act] * scale
    dyn = np.array([table[a][2][p] for a in range(12)])[act] * scale
    one_sided = np.array([table[a][3] for a in range(12)])[act]
    omega = 2 * np.pi * np.array([table[a][4] for a in range(12)])[act]
    ph = phase + LAG[name]
    # one-sided: pitch goes posture -> posture + swing -> posture; two-sided: posture ± swing
    pitch = posture + np.where(one_sided, swing * (1 - np.cos(ph)) / 2, swing * np.sin(ph))
    rate = np.where(one_sided, swing * np.sin(ph) / 2, swing * np.cos(ph)) * omega
    down, axis = _unit(NEUTRAL[name]), _unit(PITCH_AXIS[name])
    forward = np.cross(axis, down)
    n = len(act)
    acc = _rotate(np.tile(GRAVITY * down, (n, 1)), axis, pitch)
    acc += dyn[:, None] * (np.sin(2 * ph)[:, None] * -down + 0.5 * np.sin(ph)[:, None] * forward
                           + 0.3 * np.cos(2 * ph)[:, None] * axis)
    horizontal = np.cos(heading)[:, None] * forward + np.sin(heading)[:, None] * axis
    field = MAG_FIELD * (np.cos(MAG_INCLINATION) * horizontal + np.sin(MAG_INCLINATION) * down)
    mag = _rotate(field, axis, pitch)
    gyro = 0.3 * rate[:, None] * axis
    # each subject wears the sensor slightly rotated: every vector of the position turns with it
    acc, gyro, mag = (np.einsum("nij,nj->ni", mount, v) for v in (acc, gyro, mag))
    acc += rng.normal(0.0, 0.9 * noise, size=acc.shape)
    gyro += rng.normal(0.0, 0.22 * noise, size=gyro.shape)
    mag += rng.normal(0.0, 0.45 * noise, size=mag.shape)
    return np.concatenate([acc, gyro, mag], axis=1)


def _ecg(act: np.ndarray, gain: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Two ECG leads (N, 2) in mV: a QRS spike and a T wave at a random heart phase, plus motion artefacts."""
    beat = rng.random(len(act))
    wave = 2.0 * np.exp(-(((beat - 0.3) / 0.02) ** 2)) + 0.4 * np.exp(-(((beat - 0.6) / 0.06) ** 2))
    intensity = np.array([a[5] for a in ACTIVITIES])[act]
    artefact = rng.normal(0.0, 1.0, size=(len(act), 2)) * (0.3 * noise + 0.12 * intensity)[:, None]
    return gain * wave[:, None] * np.array([1.0, 0.7]) + artefact


def generate(n: int, seed: int, noise: float = 1.0, truncate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples: x (n, 23) float32 in MHEALTH's column order, labels (n,) int64 in 1..12."""
    rng = np.random.default_rng([seed, 15])
    mount = _mountings(rng)
    gains = rng.normal(1.0, 0.05, size=(SUBJECTS, N_FEATURES))
    offsets = rng.normal(0.0, 0.3, size=(SUBJECTS, N_FEATURES))
    ecg_gain = rng.lognormal(0.0, 0.25, size=(SUBJECTS, 2))
    session_scale = rng.lognormal(0.0, 0.2, size=(SUBJECTS, 12))
    session_heading = rng.uniform(0.0, 2 * np.pi, size=(SUBJECTS, 12, len(POSITIONS)))
    act = rng.choice(12, size=n, p=WEIGHTS / WEIGHTS.sum())
    subject = rng.integers(0, SUBJECTS, size=n)
    phase = rng.uniform(0.0, 2 * np.pi, size=n)
    scale = session_scale[subject, act]
    parts = {"ecg": _ecg(act, ecg_gain[subject], rng, noise)}
    for p, name in enumerate(POSITIONS):
        parts[name] = _position(p, name, act, phase, scale, session_heading[subject, act, p],
                                mount[subject, p], rng, noise)
    # MHEALTH's columns: chest acc (3), ECG (2), then acc/gyro/mag of the ankle and of the arm
    x = np.concatenate([parts["chest"][:, :3], parts["ecg"], parts["ankle"], parts["arm"]], axis=1)
    x = x * gains[subject] + offsets[subject]
    if truncate:
        x = np.trunc(x) + 0.0  # what the paper's np.savetxt(fmt="%d") does to every value (+0.0: no -0.0)
    return x.astype(np.float32), (act + 1).astype(np.int64)


def _count(name: str, value: object) -> int:
    """A size option as an int (``--dataset-opt`` passes strings)."""
    try:
        out = int(str(value))
    except ValueError:
        raise DatasetOptionError(f"mhealth_standin: {name} must be a whole number, got {value!r}") from None
    if out < 1:
        raise DatasetOptionError(f"mhealth_standin: {name} must be at least 1, got {out}")
    return out


def _flag(value: object) -> bool:
    if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise DatasetOptionError(f"mhealth_standin: truncate must be true or false, got {value!r}")
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def load_mhealth_standin(*, data_dir: str | Path | None = None, seed: int = 0, n_train: int | str = 20000,
                         n_val: int | str = 5000, n_test: int | str = 5000, noise: float | str = 1.0,
                         truncate: bool | str = True) -> Dataset:
    """The synthetic stand-in (module docstring): ``n_train``/``n_val``/``n_test`` samples drawn for ``seed``.

    ``noise`` scales every sensor's noise (1.0: the default difficulty); ``truncate`` (default true, as paper
    mode) truncates values toward zero. ``data_dir`` is unused (nothing is read), kept for the common signature.
    """
    sizes = [_count("n_train", n_train), _count("n_val", n_val), _count("n_test", n_test)]
    try:
        noise_f = float(noise)
    except ValueError:
        raise DatasetOptionError(f"mhealth_standin: noise must be a number, got {noise!r}") from None
    if not noise_f > 0:
        raise DatasetOptionError(f"mhealth_standin: noise must be positive, got {noise_f}")
    x, y = generate(sum(sizes), seed, noise=noise_f, truncate=_flag(truncate))
    cut = np.cumsum(sizes)[:-1]
    (xtr, xva, xte), (ytr, yva, yte) = np.split(x, cut), np.split(y, cut)
    info = {"source": "SYNTHETIC STAND-IN for UCI MHEALTH (host/ml/datasets/mhealth_standin.py), not MHEALTH: "
                      "per-time-step samples of 12 simulated activities (postures, swings and dynamic "
                      "acceleration per sensor position, inclined magnetic field, ECG with motion artefacts), "
                      f"{SUBJECTS} simulated subjects with sensor mounting rotations, gains and offsets, sensor "
                      f"noise x{noise_f:g}, values truncated like the paper's pipeline",
            "seed": seed, "noise": noise_f, "truncate": _flag(truncate), "standin_for": "mhealth (paper mode)"}
    return Dataset(name="mhealth_standin", x_train=xtr, y_train=ytr, x_val=xva, y_val=yva, x_test=xte, y_test=yte,
                   num_classes=13, class_names=["null (unused)", *ACTIVITY_NAMES],
                   feature_groups={k: list(v) for k, v in FEATURE_GROUPS.items()}, info=info)
