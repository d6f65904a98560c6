"""A strict decoder of UBJSON (Universal Binary JSON, ubjson.org), the subset XGBoost writes to ``.ubj`` files.

XGBoost's ``save_model`` writes UBJSON for that suffix (the default format from XGBoost 2.1 on); reading it
here keeps xgboost out of the load, as for its JSON files.  Read: objects and arrays, both also as counted
containers (``#``) and as typed counted containers of numbers (``$`` type ``#`` count: XGBoost's float32,
int32, int64 and uint8 arrays, decoded with numpy in one step); integers of every width (``i U I l L``),
float32 and float64 (``d D``), strings (``S``), characters (``C``), ``T``, ``F`` and ``Z``; all big-endian.
Keys are strings without their ``S`` marker.  Refused, as XGBoost never writes them: high-precision numbers
(``H``), no-op padding (``N``), typed containers of anything but fixed-width numbers.

Every malformed input raises :class:`UBJSONDecodeError` naming the byte offset: a count or length is
checked against the bytes left before anything is read or allocated, so a truncated or hostile file can
neither hang the reader nor make it allocate more than the file's size; nesting is limited to
``MAX_DEPTH``.
"""

from __future__ import annotations

import struct
from typing import Any, Optional

import numpy as np

# marker -> (struct format of one big-endian value, numpy dtype of a typed array of them)
NUMBERS = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q", b"d": ">f", b"D": ">d"}
CONSTANTS = {b"Z": None, b"T": True, b"F": False}
INTEGERS = (b"i", b"U", b"I", b"l", b"L")
MAX_DEPTH = 64  # XGBoost's models nest about 8 deep; this keeps hostile files far from Python's recursion limit


class UBJSONDecodeError(ValueError):
    """Input that is not UBJSON (or not the subset read here); the message names the byte offset."""


def loads(data: bytes) -> Any:
    """The value ``data`` holds (dicts, lists, str, int, float, bool, None), all of ``data`` used."""
    decoder = _Decoder(bytes(data))
    value = decoder.value(decoder.take(1), 0)
    if decoder.pos != len(decoder.data):
        raise UBJSONDecodeError(f"{len(decoder.data) - decoder.pos} bytes after the value, at byte {decoder.pos}")
    return value


class _Decoder:
    """A cursor over the input; each method reads one construct and moves past it."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def error(self, what: str, at: Optional[int] = None) -> UBJSONDecodeError:
        return UBJSONDecodeError(f"{what} at byte {self.pos if at is None else at}")

    def take(self, n: int) -> bytes:
        left = len(self.data) - self.pos
        if n > left:
            raise self.error(f"truncated: {n} bytes needed, {left} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def peek(self) -> bytes:
        if self.pos >= len(self.data):
            raise self.error("truncated: a container is not closed")
        return self.data[self.pos:self.pos + 1]

    def value(self, marker: bytes, depth: int) -> Any:
        """The value that ``marker`` (already read) opens."""
        if marker in NUMBERS:
            return self.number(marker)
        if marker in CONSTANTS:
            return CONSTANTS[marker]
        if marker == b"S":
            return self.string()
        if marker == b"C":
            return self.char()
        if marker in (b"[", b"{"):
            if depth >= MAX_DEPTH:
                raise self.error(f"containers nested deeper than {MAX_DEPTH}", self.pos - 1)
            return self.array(depth + 1) if marker == b"[" else self.object(depth + 1)
        raise self.error(f"unknown or unsupported marker {marker!r}", self.pos - 1)

    def char(self) -> str:
        code = self.take(1)
        if code >= b"\x80":
            raise self.error("a char (C) above 127", self.pos - 1)
        return code.decode("ascii")

    def number(self, marker: bytes) -> Any:
        fmt = NUMBERS[marker]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def count(self) -> int:
        """A length or count: an integer of any width, not negative."""
        at = self.pos
        marker = self.take(1)
        if marker not in INTEGERS:
            raise self.error(f"a length must be an integer, got marker {marker!r}", at)
        n = self.number(marker)
        if n < 0:
            raise self.error(f"negative length {n}", at)
        return n

    def string(self) -> str:
        at = self.pos
        raw = self.take(self.count())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("a string that is not UTF-8", at) from None

    def header(self) -> tuple[Optional[bytes], Optional[int]]:
        """(type of every item, count) of an optimized container, (None, None) of a plain one."""
        kind = None
        if self.peek() == b"$":
            self.pos += 1
            kind = self.take(1)
            if kind not in NUMBERS:
                raise self.error(f"typed containers of {kind!r} are not read (numbers only)", self.pos - 1)
            if self.peek() != b"#":
                raise self.error("a typed container ($) without its count (#)")
        if self.peek() != b"#":
            return None, None
        self.pos += 1
        at, n = self.pos, self.count()
        least = n * (struct.calcsize(NUMBERS[kind]) if kind else 1)  # every item takes a byte at least
        if least > len(self.data) - self.pos:
            raise self.error(f"truncated: a count of {n} items, {len(self.data) - self.pos} bytes left", at)
        return kind, n

    def array(self, depth: int) -> list:
        kind, n = self.header()
        if kind is not None:
            return np.frombuffer(self.take(n * struct.calcsize(NUMBERS[kind])), NUMBERS[kind]).tolist()
        if n is not None:
            return [self.value(self.take(1), depth) for _ in range(n)]
        items = []
        while self.peek() != b"]":
            items.append(self.value(self.take(1), depth))
        self.pos += 1
        return items

    def object(self, depth: int) -> dict:
        kind, n = self.header()
        item = (lambda: self.number(kind)) if kind is not None else (lambda: self.value(self.take(1), depth))
        if n is not None:
            return {self.string(): item() for _ in range(n)}
        members = {}
        while self.peek() != b"}":
            key = self.string()
            members[key] = item()
        self.pos += 1
        return members
