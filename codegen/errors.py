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
            message = f"{op_type} (op #{op_index}, output tensor '{output_name}'): {reason}"
        else:  # a property of the model itself, not of one operator
            message = f"model (tensor '{output_name}'): {reason}"
        if hint:
            message += f". {hint}"
        super().__init__(message)
