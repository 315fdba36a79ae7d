"""A bounds-checked, read-only view of a FlatBuffer (the container format of .tflite files).

The ``flatbuffers`` Python runtime trusts every offset it follows: on a damaged file it raises whatever
``struct`` / numpy / slicing happen to raise (or silently returns short strings). This view checks each
table, vtable, field, vector and string against the buffer before reading it, the way the C++
``flatbuffers::Verifier`` does (bounds, alignment, string terminators), and turns every violation into a
:class:`ModelFormatError` that names the file, the place in the model and the byte offsets involved.

Only the layout is known here (tables, fields by id, vectors, strings); what the fields mean is the
reader's business (``tflite_reader.py``).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from .errors import ModelFormatError

#: What to do about a file whose structure is broken (the usual causes: a partial copy or download, a
#: file overwritten while being written, a bit flip on a flash/SD card).
DAMAGED_HINT = "the file is truncated or damaged: copy it again or re-run the converter"

U8 = struct.Struct("<B")
I8 = struct.Struct("<b")
U16 = struct.Struct("<H")
I32 = struct.Struct("<i")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class FieldLayout:
    """Where one field of a table lives and how big it is, enough to bounds-check it without decoding it.

    ``kind`` is ``"scalar"`` (``size`` bytes inline), ``"vector"`` (offset to a vector of ``size``-byte
    elements), ``"string"`` (offset to a string) or ``"offset"`` (offset to something this module cannot
    see the layout of: only that the target lies in the file is checked).
    """

    field_id: int
    kind: str
    size: int


class FlatBuffer:
    """The raw bytes of one file plus its name, for messages."""

    def __init__(self, raw: bytes, source: str) -> None:
        self.raw = raw
        self.source = source
        self.size = len(raw)

    def fail(self, problem: str, hint: str = DAMAGED_HINT) -> NoReturn:
        raise ModelFormatError(problem, path=self.source, hint=hint)

    def need(self, pos: int, size: int, what: str, align: int = 1) -> None:
        """Fail unless bytes ``[pos, pos + size)`` lie in the file (and ``pos`` is ``align``-aligned)."""
        # Past the end can be a cut-short file or a damaged offset; before the start is always damage.
        if pos < 0:
            self.fail(f"corrupt: {what} points to byte {pos:,}, before the start of the file")
        if pos >= self.size:
            self.fail(f"truncated or corrupt: {what} points to byte {pos:,}, past the end of the "
                      f"{self.size:,}-byte file")
        if pos + size > self.size:
            self.fail(f"truncated or corrupt: {what} needs bytes {pos:,}..{pos + size - 1:,}, past the end of "
                      f"the {self.size:,}-byte file")
        if align > 1 and pos % align:
            self.fail(f"corrupt: {what} at byte {pos:,} is not {align}-byte aligned (the writer aligns it)")

    def read(self, fmt: struct.Struct, pos: int, what: str) -> int:
        self.need(pos, fmt.size, what)
        return fmt.unpack_from(self.raw, pos)[0]

    def table_at(self, pos: int, what: str) -> Table:
        """The table whose start (its offset to the vtable) is at ``pos``."""
        self.need(pos, 4, what, align=4)
        vtable = pos - I32.unpack_from(self.raw, pos)[0]
        self.need(vtable, 4, f"{what}: its vtable", align=2)
        vt_size, inline_size = struct.unpack_from("<HH", self.raw, vtable)
        if vt_size < 4 or vt_size % 2:
            self.fail(f"corrupt: {what}: its vtable at byte {vtable:,} has an impossible size of {vt_size} bytes")
        self.need(vtable, vt_size, f"{what}: its vtable")
        if inline_size < 4:
            self.fail(f"corrupt: {what}: its vtable at byte {vtable:,} gives the table an impossible size of "
                      f"{inline_size} bytes")
        self.need(pos, inline_size, what)
        return Table(self, pos, vtable, vt_size, inline_size, what)

    def follow(self, pos: int, what: str) -> int:
        """Absolute position a uoffset stored at ``pos`` points to (uoffsets are unsigned: always forward)."""
        return pos + self.read(U32, pos, what)

    def vector_at(self, pos: int, elem_size: int, what: str) -> tuple[int, int]:
        """(first element, element count) of the vector whose length prefix is at ``pos``."""
        self.need(pos, 4, what, align=4)
        count = U32.unpack_from(self.raw, pos)[0]
        start = pos + 4
        if count * elem_size > self.size - start:
            self.fail(f"truncated or corrupt: {what} at byte {pos:,} claims {count:,} {elem_size}-byte entries, "
                      f"more than the {self.size - start:,} bytes left in the {self.size:,}-byte file")
        return start, count

    def string_at(self, pos: int, what: str) -> bytes:
        start, count = self.vector_at(pos, 1, what)
        # The C++ runtime hands out strings as C strings (TFLM prints names, compares custom op codes).
        if start + count >= self.size or self.raw[start + count] != 0:
            self.fail(f"corrupt: {what} at byte {pos:,} is not NUL-terminated")
        return self.raw[start:start + count]


class Table:
    """One table: fields are looked up by their id in the schema (declaration order, from 0)."""

    __slots__ = ("fb", "pos", "vtable", "vt_size", "inline_size", "what")

    def __init__(self, fb: FlatBuffer, pos: int, vtable: int, vt_size: int, inline_size: int, what: str) -> None:
        self.fb = fb
        self.pos = pos
        self.vtable = vtable
        self.vt_size = vt_size
        self.inline_size = inline_size
        self.what = what

    def field_pos(self, field_id: int, size: int, name: str) -> int:
        """Absolute position of a present field (0 when absent: the reader then uses the default)."""
        slot = 4 + 2 * field_id
        if slot + 2 > self.vt_size:  # written by an older schema: the field did not exist yet
            return 0
        offset = U16.unpack_from(self.fb.raw, self.vtable + slot)[0]
        if offset == 0:
            return 0
        if offset < 4 or offset + size > self.inline_size:
            self.fb.fail(f"corrupt: {self.what}: field '{name}' lies outside its {self.inline_size}-byte table "
                         f"(at +{offset} in the table at byte {self.pos:,})")
        return self.pos + offset

    def scalar(self, field_id: int, fmt: struct.Struct, default: int, name: str) -> int:
        pos = self.field_pos(field_id, fmt.size, name)
        return default if pos == 0 else fmt.unpack_from(self.fb.raw, pos)[0]

    def _target(self, field_id: int, name: str) -> int:
        pos = self.field_pos(field_id, 4, name)
        return 0 if pos == 0 else self.fb.follow(pos, f"{self.what}.{name}")

    def table(self, field_id: int, name: str) -> Table | None:
        target = self._target(field_id, name)
        return None if target == 0 else self.fb.table_at(target, f"{self.what}.{name}")

    def string(self, field_id: int, name: str) -> bytes | None:
        target = self._target(field_id, name)
        return None if target == 0 else self.fb.string_at(target, f"{self.what}.{name}")

    def array(self, field_id: int, dtype: str, name: str) -> np.ndarray | None:
        """A vector of scalars as a read-only numpy view (``dtype`` little-endian, e.g. ``'<i4'``)."""
        target = self._target(field_id, name)
        if target == 0:
            return None
        np_dtype = np.dtype(dtype)
        start, count = self.fb.vector_at(target, np_dtype.itemsize, f"{self.what}.{name}")
        return np.frombuffer(self.fb.raw, dtype=np_dtype, count=count, offset=start)

    def tables(self, field_id: int, name: str, label: str) -> list[Table]:
        """A vector of tables; ``label`` names one element in messages (``'tensor'`` -> ``tensor 3``)."""
        target = self._target(field_id, name)
        if target == 0:
            return []
        start, count = self.fb.vector_at(target, 4, f"{self.what}.{name}")
        prefix = f"{self.what} {label}" if self.what != "model" else label
        return [self.fb.table_at(self.fb.follow(start + 4 * i, f"{prefix} {i}"), f"{prefix} {i}")
                for i in range(count)]

    def check(self, fields: tuple[FieldLayout, ...], name: str) -> None:
        """Bounds-check every field in ``fields`` without decoding any (for tables decoded by other code)."""
        for f in fields:
            label = f"{name} field #{f.field_id}"
            if f.kind == "scalar":
                self.field_pos(f.field_id, f.size, label)
                continue
            target = self._target(f.field_id, label)
            if target == 0:
                continue
            if f.kind == "offset":
                self.fb.need(target, 4, f"{self.what}.{label}")
            elif f.kind == "string":
                self.fb.string_at(target, f"{self.what}.{label}")
            else:
                self.fb.vector_at(target, f.size, f"{self.what}.{label}")
