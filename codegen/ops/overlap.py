"""When a window kernel's output may overlap its input (TinyEngine-style in-place), and by how much.

A kernel that walks its output pixels in raster order (NHWC, batch 1) never reads an input byte again once
every output pixel whose window holds that byte is written. So its output can start *below* its input in
the same block: output at offset 0, input at offset ``D``. ``D`` must keep every output byte written so far
below every input byte still to be read. With ``in_min(k)`` the lowest input byte the window of output pixel
``k`` reads (its top-left valid tap), ``out_end(k) = (k + 1) * C_out``, and ``B`` output pixels in flight
(the kernel may write pixel ``j`` while it still reads the windows of pixels ``j - B + 1 .. j``: 2 for the
convolutions that gather two im2col columns, 1 for a kernel that reads a pixel's window channel by channel
while it writes that pixel's channels):

    D = max over j of  out_end(j) - min over i >= j - B + 1 of in_min(i)      (clamped at 0, aligned up)

This is conservative: it keeps the *whole* written range below the *lowest* byte any later window reads.
A kernel whose loops are not raster-ordered over output pixels (e.g. channel groups outermost, as the
depthwise DSP kernel) must not declare a rule: its output may not overlap its input at all.

The block the pair then needs is ``max(out_bytes, D + in_bytes)`` instead of ``out_bytes + in_bytes``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class RasterOverlap:
    """A kernel's "may overlap" rule: output pixels in raster order, ``pixels_in_flight`` written at a time.

    Called with a step's ``params`` (the ``input_dims`` / ``output_dims`` / ``filter_dims`` / ``stride`` /
    ``padding`` / ``dilation`` the templates read) it returns ``D``, the least number of bytes the input
    must start after the output, or None when the step's geometry is outside the rule (batch > 1)."""

    pixels_in_flight: int

    def __call__(self, params: Mapping[str, Any]) -> int | None:
        i, o = params["input_dims"], params["output_dims"]
        if i["n"] != 1 or o["n"] != 1:
            return None
        f = params.get("filter_dims", {"h": 1, "w": 1})
        dil = params.get("dilation", (1, 1))
        in_min = _window_starts(i["h"], i["w"], i["c"], o["h"], o["w"], (f["h"], f["w"]), tuple(params["stride"]),
                                tuple(params["padding"]), tuple(dil))
        # Lowest input byte read by any pixel from k on (suffix minimum), then shifted by the pixels in flight.
        later_min = np.minimum.accumulate(in_min[::-1])[::-1]
        lag = self.pixels_in_flight - 1
        guard = np.concatenate([np.full(lag, later_min[0]), later_min[:len(later_min) - lag]]) if lag else later_min
        out_end = (np.arange(len(in_min), dtype=np.int64) + 1) * o["c"]
        return max(0, int(np.max(out_end - guard))) if len(in_min) else 0


def _window_starts(h: int, w: int, c: int, oh: int, ow: int, k: tuple[int, int], stride: tuple[int, int],
                   pad: tuple[int, int], dil: tuple[int, int]) -> np.ndarray:
    """Byte offset of the lowest input byte each output pixel's window reads, in raster order (int64)."""
    far = np.int64(h * w * c)  # a window entirely in the padding reads nothing: no constraint
    rows = _first_valid(h, oh, k[0], stride[0], pad[0], dil[0])
    cols = _first_valid(w, ow, k[1], stride[1], pad[1], dil[1])
    starts = (rows[:, None] * w + cols[None, :]) * c
    empty = (rows[:, None] < 0) | (cols[None, :] < 0)
    return np.where(empty, far, starts).reshape(-1).astype(np.int64)


def _first_valid(size: int, out: int, k: int, stride: int, pad: int, dil: int) -> np.ndarray:
    """Per output index, the first input index along one axis its window reads inside the input (-1: none)."""
    first = np.full(out, -1, dtype=np.int64)
    for o in range(out):
        for t in range(k):
            x = o * stride - pad + t * dil
            if 0 <= x < size:
                first[o] = x
                break
    return first
