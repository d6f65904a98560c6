"""Turning names from a model file into safe C++.

Nothing a model file says may reach the generated code except as an
identifier made here (letters, digits and single underscores, never a
keyword, unique) or as a comment made by :func:`comment`, which cannot be
closed early.
"""

from __future__ import annotations

import re

CPP_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class
compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype
default delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline
int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public register
reinterpret_cast requires return short signed sizeof static static_assert static_cast struct switch template
this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t
while xor xor_eq final override import module main std size_t NULL assert errno
linux unix i386 major minor offsetof setjmp stdin stdout stderr va_arg va_start va_end
""".split())  # the last line: lower-case macros of GNU mode and the C library

_NOT_IDENT = re.compile(r"[^0-9A-Za-z]+")
# All capitals, digits and underscores: the shape of macros (INT_MAX, EOF, M_PI) that would replace the name.
_MACRO_LIKE = re.compile(r"^[A-Z][A-Z0-9_]+$")
# Longer names are cut (uniqueness is the NameTable's job): a 10k-character tensor name stays readable.
MAX_IDENT = 64


def identifier(text: str, prefix: str = "") -> str:
    """A valid C++ identifier resembling ``text`` (not yet unique).

    It never contains ``__``, never starts or ends with ``_``: generated code
    names its own locals with a trailing ``_`` so they cannot collide.
    """
    core = _NOT_IDENT.sub("_", text).strip("_")[:MAX_IDENT].strip("_") or "unnamed"
    ident = prefix + core
    if ident[0].isdigit():
        ident = "n" + ident
    if ident in CPP_KEYWORDS or ident.startswith("_") or _MACRO_LIKE.match(ident) and not prefix:
        ident = "v_" + ident  # keywords and macro-like names
    return ident


class NameTable:
    """Unique identifiers for original names, stable in insertion order."""

    def __init__(self, reserved: frozenset[str] | set[str] = frozenset(), reserved_prefixes: tuple[str, ...] = ()):
        """``reserved_prefixes``: names the emitter derives itself (members like ``fArena_``), kept off."""
        self._taken: set[str] = set(reserved) | set(CPP_KEYWORDS)
        self._prefixes = reserved_prefixes
        self._map: dict[tuple[str, str], str] = {}

    def get(self, original: str, prefix: str = "", kind: str = "") -> str:
        """Identifier of ``original``; ``kind`` keeps e.g. dims and tensors of one name apart."""
        key = (kind, original)
        if key not in self._map:
            base = identifier(original, prefix)
            if base.startswith(self._prefixes):
                base = "v_" + base
            ident, k = base, 2
            while ident in self._taken:
                ident, k = f"{base}_{k}", k + 1
            self._taken.add(ident)
            self._map[key] = ident
        return self._map[key]


def comment(text: str, limit: int = 120) -> str:
    """Model text made safe inside a ``//`` comment.

    Printable ASCII only; no backslash (a line continuation would swallow the
    next line), no ``??`` (trigraphs: ``??/`` is a backslash where they are
    on, and g++ -Wall warns of them), no ``/*`` or ``*/`` (harmless after
    ``//`` but confusing to any tool that strips comments naively).
    """
    safe = "".join(c if 32 <= ord(c) < 127 and c != "\\" else "?" for c in str(text))
    safe = safe if len(safe) <= limit else safe[: limit - 3] + "..."
    while "??" in safe or "/*" in safe or "*/" in safe:
        safe = safe.replace("??", "?_?").replace("/*", "/_*").replace("*/", "*_/")
    return safe


def string_literal(text: str) -> str:
    """A C++ string literal whose value is ``text``.

    Non-printables, ``?`` (trigraphs) and ``*`` (so no ``/*`` or ``*/`` shows
    up to confuse tools that strip comments) are written as octal escapes.
    """
    out = []
    for ch in str(text):
        o = ord(ch)
        if ch in "\\\"":
            out.append("\\" + ch)
        elif 32 <= o < 127 and ch not in "?*":
            out.append(ch)
        else:
            for b in ch.encode("utf-8"):
                out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'
