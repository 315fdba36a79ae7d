"""resilinet-mcu code generator: a full-integer int8 .tflite model -> a C module calling CMSIS-NN.

Main entry points: :func:`generate_module` (write N.c / N.h), :func:`build_module` (same, in memory),
:func:`verify_model` (bit-exactness against tflite_micro), :func:`report_model` / :func:`format_report`
(op table and memory budget), :func:`cross_compile` (Cortex-M flash/RAM), :func:`read_tflite` /
:func:`check_tflite` (the validating .tflite reader: any bad file raises :class:`ModelFormatError`).
CLI: ``python -m codegen``.
"""
from __future__ import annotations

from .emit import (IoSpec, Module, ModuleInfo, OpSummary, activation_tensors, build_module, generate_module,
                   sanitize_name, write_module)
from .errors import CodegenError, ModelFormatError, UnsupportedOpError, UnsupportedOpsError
from .footprint import Footprint, cross_compile
from .graph import Graph, Operator, Quantization, Tensor
from .ops import SUPPORTED_OPS
from .report import format_report, report_model
from .tflite_reader import check_tflite, read_tflite
from .verify import HostTarget, Target, VerifyResult, register_target, verify_model
from . import qemu_target  # noqa: E402,F401  registers verify --target qemu / qemu-f405

__all__ = [
    "SUPPORTED_OPS",
    "CodegenError",
    "Footprint",
    "Graph",
    "HostTarget",
    "IoSpec",
    "ModelFormatError",
    "Module",
    "ModuleInfo",
    "OpSummary",
    "Operator",
    "Quantization",
    "Target",
    "Tensor",
    "UnsupportedOpError",
    "UnsupportedOpsError",
    "VerifyResult",
    "activation_tensors",
    "build_module",
    "check_tflite",
    "cross_compile",
    "format_report",
    "generate_module",
    "read_tflite",
    "register_target",
    "report_model",
    "sanitize_name",
    "verify_model",
    "write_module",
]
