"""Width scaling of a topology: every layer's channels (``filters``) and ``units`` times one factor.

The quick form of a network (``python -m host.build --width 0.125``, the preset matrix test): the graph,
the strides, kernels and partition stay as written and only the channel counts shrink, so every link and
skip keeps its spatial shape and the network still trains, quantizes and runs on boards -- in seconds
rather than hours for the paper's CIFAR networks. Applied by :func:`host.ml.topology.parse_topology`.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

#: The layer keys :func:`scale_widths` scales: a layer's output channels (conv, dwsep, resblock) or units.
WIDTH_KEYS = ("filters", "units")


def scaled(value: int, width: float) -> int:
    """``value`` x ``width``, rounded half up, at least 1. The same number always scales to the same number,
    so a projection written with its receiver's filter count keeps matching it."""
    return max(1, int(value * width + 0.5))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def scale_widths(layers: Iterable[dict], width: float) -> list[dict]:
    """Layer specs with every integer ``filters`` / ``units`` scaled by ``width`` (``units = "classes"`` kept).

    A ``reshape`` infers its last dimension (-1): it is the channels a scaled layer before it produces.
    """
    out = []
    for spec in layers:
        spec = dict(spec)
        for key in WIDTH_KEYS:
            if _is_int(spec.get(key)):
                spec[key] = scaled(spec[key], width)
        shape = spec.get("shape")
        if spec.get("type") == "reshape" and isinstance(shape, list) and shape and -1 not in shape:
            spec["shape"] = [*shape[:-1], -1]
        out.append(spec)
    return out


def scale_distillation(spec: Mapping[str, Any], width: float, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A ``[distillation]`` section with the teacher's and the students' widths scaled: ``filters`` stays a
    multiple of ``parts`` and the teacher's last width equal to it. Entries of the wrong type are left as
    they are (:func:`host.ml.topology.distillation_graph` names them)."""
    d = dict(spec)
    if width == 1:
        return d
    parts, filters = d.get("parts", defaults["parts"]), d.get("filters", defaults["filters"])
    if _is_int(parts) and parts > 0 and _is_int(filters):
        d["filters"] = max(1, int(filters * width / parts + 0.5)) * parts
    student = d.get("student_width", defaults["student_width"])
    if _is_int(student):
        d["student_width"] = scaled(student, width)
    teacher = d.get("teacher_widths", [16, 32, filters])
    if isinstance(teacher, list) and teacher and all(_is_int(w) for w in teacher):
        d["teacher_widths"] = [scaled(w, width) for w in teacher[:-1]] + [d["filters"]]
    return d
