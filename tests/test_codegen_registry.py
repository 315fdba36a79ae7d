"""The op registry (codegen/ops) is consistent: every op's kernels have a template fragment, a kernel file that
defines what the fragment calls, and unique names; SUPPORTED_OPS is the registry. No model, no compiler: fast."""
from __future__ import annotations

import re

import pytest

import codegen
from codegen import ops
from codegen.emit import TEMPLATES_DIR
from codegen.verify import kernels_dir

KERNELS = sorted(ops.KERNELS.values(), key=lambda k: k.name)


def test_supported_ops_are_the_registry() -> None:
    assert codegen.SUPPORTED_OPS == tuple(sorted(ops.OPS))
    assert all(op_type == op.op_type for op_type, op in ops.OPS.items())


def test_kernel_names_are_unique() -> None:
    by_name: dict[str, set[int]] = {}
    for op in ops.OPS.values():
        for k in op.kernels:
            by_name.setdefault(k.name, set()).add(id(k))
    assert {name: len(ids) for name, ids in by_name.items() if len(ids) > 1} == {}


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_kernel_fragment_calls_functions_its_kernel_file_defines(kernel: ops.Kernel) -> None:
    fragment = (TEMPLATES_DIR / kernel.template).read_text()
    # Names written out in full before "(" (a name completed by a template expression is skipped).
    called = set(re.findall(r"\b((?:arm|resilinet)_[a-z0-9_]+)\(", fragment))
    if not kernel.source:
        assert not called, f"{kernel.name} emits no code but its fragment calls {sorted(called)}"
        return
    source = (kernels_dir() / kernel.source).read_text()
    assert called, f"{kernel.template} calls no kernel"
    # Our entry points for weight layouts Arm's API lacks: called only when not built against Arm's library.
    ours = (re.findall(r"#ifdef RESILINET_USE_CMSIS_NN\n.*?#else\n(.*?)#endif", fragment, re.S)
            + re.findall(r"#ifndef RESILINET_USE_CMSIS_NN\n(.*?)#else", fragment, re.S))
    layouts = {name for block in ours for name in re.findall(r"\b(resilinet_[a-z0-9_]+)\(", block)}
    for name in called:
        assert re.search(rf"^\w[\w \t*]*\b{name}\(", source, re.M), f"{name} is not defined in {kernel.source}"
        if name not in layouts:
            assert name.startswith("resilinet_") == kernel.extension, f"{name}: extension flag of {kernel.name}"
