"""The UBJSON decoder of the XGBoost front end (``sofie_rdf.parsers._ubjson``) on hand-written bytes.

Encodings are spelled out from the UBJSON spec (ubjson.org: markers, big-endian numbers, ``$`` type and
``#`` count of optimized containers) rather than made by an encoder, so the test and the decoder do not
share a reading of the format.  Every malformed input must raise ``UBJSONDecodeError`` naming the byte,
quickly, whatever counts it claims.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from sofie_rdf.parsers._ubjson import MAX_DEPTH, UBJSONDecodeError, loads


def s(text: str) -> bytes:
    """A string's length (as int8) and UTF-8 bytes: a key, or a value after its ``S``."""
    raw = text.encode()
    return b"i" + struct.pack(">b", len(raw)) + raw


@pytest.mark.parametrize("data, value", [
    (b"i\xff", -1), (b"U\xff", 255), (b"I" + struct.pack(">h", -300), -300),
    (b"l" + struct.pack(">i", -70000), -70000), (b"L" + struct.pack(">q", -2**40), -2**40),
    (b"d" + struct.pack(">f", 0.1), float(np.float32(0.1))), (b"D" + struct.pack(">d", 0.1), 0.1),
    (b"S" + s("b\u00e4se"), "b\u00e4se"), (b"Ca", "a"), (b"T", True), (b"F", False), (b"Z", None),
    (b"[]", []), (b"{}", {}),
    (b"[i\x01Si\x01x[Z]]", [1, "x", [None]]),                               # plain array, nested
    (b"{" + s("a") + b"U\x02" + s("b") + b"{}}", {"a": 2, "b": {}}),          # plain object
    (b"[#i\x02i\x07T", [7, True]),                                          # counted: no closing ']'
    (b"[$d#i\x02" + struct.pack(">2f", 1.5, -0.25), [1.5, -0.25]),          # typed float32, as XGBoost
    (b"[$U#U\x03\x00\x01\x00", [0, 1, 0]),                                   # uint8 (default_left)
    (b"[$L#L" + struct.pack(">q", 2) + struct.pack(">2q", -1, 2**40), [-1, 2**40]),
    (b"[$l#i\x00", []),
    (b"{#i\x01" + s("k") + b"Si\x00", {"k": ""}),                          # counted object
    (b"{$I#i\x02" + s("x") + struct.pack(">h", 3) + s("y") + struct.pack(">h", -3), {"x": 3, "y": -3}),
])
def test_values(data: bytes, value) -> None:
    got = loads(data)
    assert got == value and type(got) is type(value)


def test_typed_arrays_are_plain_python_values() -> None:
    """Typed arrays come back as lists of int and float, as ``json`` gives them (the parser checks types)."""
    ints, floats = loads(b"[$l#i\x02" + struct.pack(">2i", 3, -4)), loads(b"[$D#i\x01" + struct.pack(">d", 2.5))
    assert [type(v) for v in ints + floats] == [int, int, float]


@pytest.mark.parametrize("data, message", [
    (b"", "truncated: 1 bytes needed, 0 left at byte 0"),
    (b"[i\x01", "truncated: a container is not closed at byte 3"),
    (b"l\x00\x01", "truncated: 4 bytes needed, 2 left at byte 1"),
    (b"[$d#i\x02" + b"\x00" * 7, "truncated: a count of 2 items, 7 bytes left at byte 4"),
    (b"[#L" + struct.pack(">q", 2**62), "truncated: a count of 4611686018427387904 items, 0 bytes left"),
    (b"{" + b"L" + struct.pack(">q", 2**60), "truncated: 1152921504606846976 bytes needed"),
    (b"[$Z#i\x03", r"typed containers of b'Z' are not read \(numbers only\) at byte 2"),
    (b"[$d]", r"a typed container \(\$\) without its count \(#\) at byte 3"),
    (b"Si\xff", "negative length -1 at byte 1"),
    (b"Sdabcd", "a length must be an integer, got marker b'd' at byte 1"),
    (b"{Si\x01a}", "a length must be an integer, got marker b'S' at byte 1"),
    (b"Si\x02\xff\xfe", "a string that is not UTF-8 at byte 1"),
    (b"C\xe4", "a char"),
    (b"Hi\x011", "unknown or unsupported marker b'H' at byte 0"),
    (b"[N]", "unknown or unsupported marker b'N' at byte 1"),
    (b"[" * (MAX_DEPTH + 1), f"containers nested deeper than {MAX_DEPTH} at byte {MAX_DEPTH}"),
    (b"ZZ", "1 bytes after the value, at byte 1"),
    (b'{"learner": 1}', "a length must be an integer, got marker b'\"' at byte 1"),  # JSON is not UBJSON
])
def test_malformed_input_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(UBJSONDecodeError, match=message):
        loads(data)


def test_mutations_raise_only_decode_errors() -> None:
    """Bytes flipped, cut and repeated in a document of every construct: a value or UBJSONDecodeError."""
    seed = (b"{" + s("trees") + b"[#i\x02{" + s("split") + b"[$d#i\x02" + struct.pack(">2f", 0.5, -1.0)
            + s("left") + b"[$l#i\x01" + struct.pack(">i", -1) + s("name") + b"Si\x03abc}[TFZCx]"
            + s("n") + b"L" + struct.pack(">q", 7) + b"}")
    assert loads(seed)["n"] == 7
    rng, outcomes = random.Random(5), {"decoded": 0, "refused": 0}
    for _ in range(2000):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(max(len(data), 1))
            action = rng.random()
            if action < 0.5:
                data[at:at + 1] = bytes([rng.randrange(256)])
            elif action < 0.75:
                del data[at:]
            else:
                data[at:at] = data[at:at + rng.randint(1, 8)]
        try:
            loads(bytes(data))
            outcomes["decoded"] += 1
        except UBJSONDecodeError:
            outcomes["refused"] += 1
    assert min(outcomes.values()) > 100, outcomes  # the mutations reach both outcomes
