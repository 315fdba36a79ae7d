"""Exceptions raised while turning a .tflite model into C."""
from __future__ import annotations

import os


class CodegenError(Exception):
    """Base class: the model cannot be turned into a module as it is."""


class ModelFormatError(CodegenError):
    """The file is not a TFLite flatbuffer we can read (or uses a feature of the format we do not read).

    The message reads ``"<path>: <problem> (<hint>)"``: which file, what is wrong with it and what to do.
    ``path``, ``problem`` and ``hint`` are also kept separately for callers that format their own report.
    A single positional message (no path) is accepted too.
    """

    def __init__(self, problem: str, path: str | os.PathLike[str] | None = None, hint: str = "") -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        self.hint = hint
        message = problem if self.path is None else f"{self.path}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class UnsupportedOpError(CodegenError):
    """An operator (or one of its options / tensor types) has no bit-exact lowering.

    The message names the op type, its index in the subgraph and its first output tensor so that the
    user can find it in Netron or in the converter's log, and says what to change.
    """

    def __init__(self, op_type: str, op_index: int, output_name: str, reason: str, hint: str = "") -> None:
        self.op_type = op_type
        self.op_index = op_index
        self.output_name = output_name
        self.reason = reason
        self.hint = hint
        if op_index >= 0:
            message = f"{op_type} (op #{op_index}, output tensor '{shorten(output_name)}'): {reason}"
        else:  # a property of the model itself, not of one operator
            message = f"model (tensor '{shorten(output_name)}'): {reason}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class UnsupportedOpsError(UnsupportedOpError):
    """Every operator of a model that has no bit-exact lowering, in one error.

    ``errors`` holds one :class:`UnsupportedOpError` per failing op (model-level problems last); the
    attributes of the first are also this error's own, so a caller that handles one op keeps working. The
    message groups the failures by op type, with their count and op indices, and ends with each distinct
    remedy once.
    """

    def __init__(self, errors: list[UnsupportedOpError]) -> None:
        if not errors:
            raise ValueError("UnsupportedOpsError needs at least one error")
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.op_type, first.op_index, first.output_name, first.reason, first.hint)
        if len(self.errors) > 1:
            Exception.__init__(self, format_unsupported(self.errors))


#: Tensor names longer than this are shortened in messages (converter names can run past 300 characters).
NAME_LIMIT = 60


def shorten(name: str, limit: int = NAME_LIMIT) -> str:
    """``name`` itself, or its start and end around '...' when longer than ``limit`` characters."""
    if len(name) <= limit:
        return name
    head = (limit - 3) // 2
    return name[:head] + "..." + name[len(name) - (limit - 3 - head):]


#: The reason of an op type the registry does not know (grouped together in :func:`format_unsupported`).
NOT_SUPPORTED = "operator is not supported by the CMSIS-NN code generator"


def format_unsupported(errors: list[UnsupportedOpError]) -> str:
    """One message for several failures, grouped by op type with count and op indices::

        N ops of K types cannot be generated: no kernel for T1 xC (ops #i, #j; first output 'name'), T2 ...;
        T3 x1 (op #k; ...): reason; model: reason. What to do: hint; hint

    Reasons that differ within one op type are each listed once, and so is each distinct remedy.
    """
    groups: dict[str, list[UnsupportedOpError]] = {}
    for e in errors:
        groups.setdefault(e.op_type if e.op_index >= 0 else "model", []).append(e)
    missing, parts = [], []
    for op_type, group in groups.items():
        if op_type == "model":
            continue
        indices = ", ".join(f"#{e.op_index}" for e in group)
        where = f"{op_type} x{len(group)} (op{'s' if len(group) > 1 else ''} {indices}; " \
                f"first output '{shorten(group[0].output_name)}')"
        reasons = [r for r in dict.fromkeys(e.reason for e in group)]
        if reasons == [NOT_SUPPORTED]:
            missing.append(where)
        else:
            parts.append(f"{where}: {' / '.join(reasons)}")
    if missing:
        parts.insert(0, "no lowering for " + ", ".join(missing))
    if "model" in groups:
        parts.append("model: " + "; ".join(dict.fromkeys(e.reason for e in groups["model"])))
    n_ops = sum(1 for e in errors if e.op_index >= 0)
    n_types = len(groups) - ("model" in groups)
    head = (f"{n_ops} op{'s' if n_ops != 1 else ''} of {n_types} type{'s' if n_types != 1 else ''} cannot be "
            "generated" if n_ops else "the model cannot be generated")
    hints = list(dict.fromkeys(e.hint for e in errors if e.hint))
    return f"{head}: " + "; ".join(parts) + (". What to do: " + "; ".join(hints) if hints else "")
