"""Sliding windows over labelled sensor streams (HAPT, MHEALTH).

A window must describe one activity by one person in one recording: a window straddling a label
change has no true label, and one straddling two sessions glues unrelated signals together. So
windows are cut only inside *runs*: maximal stretches where label, group (session or subject) and
sample continuity are all unchanged.
"""
from __future__ import annotations

import numpy as np


def label_runs(labels: np.ndarray, groups: np.ndarray | None = None,
               sequence: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) of each run of constant label within one group.

    ``sequence`` (sample counter) additionally breaks a run where samples are not consecutive,
    so a gap in a recording never ends up inside one window.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = labels[1:] != labels[:-1]
    if groups is not None:
        groups = np.asarray(groups)
        change |= groups[1:] != groups[:-1]
    if sequence is not None:
        sequence = np.asarray(sequence, dtype=np.int64)
        change |= np.diff(sequence) != 1
    bounds = np.flatnonzero(change) + 1
    starts = np.concatenate([[0], bounds]).astype(np.int64)
    ends = np.concatenate([bounds, [n]]).astype(np.int64)
    return starts, ends


def window_starts(labels: np.ndarray, length: int, step: int, groups: np.ndarray | None = None,
                  sequence: np.ndarray | None = None, keep: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and labels of every window of ``length`` samples, ``step`` apart, inside runs.

    Windows begin at each run's first sample; a run's tail shorter than a window is dropped.
    ``keep`` lists the labels to window (others, e.g. unlabelled -1 or null class 0, are skipped).
    """
    if length <= 0 or step <= 0:
        raise ValueError("length and step must be positive")
    labels = np.asarray(labels)
    starts, ends = label_runs(labels, groups, sequence)
    run_labels = labels[starts]
    usable = (ends - starts) >= length
    if keep is not None:
        usable &= np.isin(run_labels, np.asarray(keep))
    starts, ends, run_labels = starts[usable], ends[usable], run_labels[usable]
    counts = (ends - starts - length) // step + 1
    run_of_window = np.repeat(np.arange(len(starts)), counts)
    # Position of each window inside its run: 0, 1, 2, ... restarting for each run.
    first_window = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    offset = np.arange(counts.sum(), dtype=np.int64) - np.repeat(first_window, counts)
    return starts[run_of_window] + offset * step, run_labels[run_of_window]


def gather_windows(signal: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Cut ``(len(starts), length, channels)`` windows out of a ``(N, channels)`` signal."""
    index = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length, dtype=np.int64)[None, :]
    return signal[index]
