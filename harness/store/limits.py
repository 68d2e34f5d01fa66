"""What the store accepts, checked the same way before any backend sees a row.

SQLite stores a 10,000-character name in a `VARCHAR(200)`, a NUL inside text and an integer of
any size up to 64 bits; PostgreSQL refuses the first two and overflows a 32-bit `INTEGER` at 2^31.
So every row is checked here first (`check_row`, run by each store session before it flushes) and
a value either side would refuse, or that one would mangle, is a one-line `InputError`:

- a string column's declared length is its limit (`task`, `profile`: 64 characters;
  `method_name`, artifact `name`: 200; measurement and curve `name`: 128; units 32), and such
  short names hold no control characters (C0, DEL, C1);
- no text anywhere (long text, JSON) holds a NUL character;
- an `Integer` column holds -2^31 .. 2^31-1 (seeds, counts), a `BigInteger` column 64 bits
  (artifact sizes);
- a float is finite, and JSON holds only finite numbers and 64-bit integers.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy import BigInteger, Float, Integer, String, Text, inspect
from sqlalchemy.types import JSON

from harness.errors import InputError

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_row(row: Any) -> None:
    """Raise InputError naming the first column of an ORM object the store must not take."""
    mapper = inspect(row).mapper
    label = f"{mapper.class_.__tablename__} {getattr(row, 'id', None) or getattr(row, 'name', '')}"
    for column in mapper.columns:
        value = getattr(row, column.key, None)
        if value is None:
            continue
        where = f"{label.strip()}: {column.key}"
        kind = column.type
        if isinstance(kind, Text) or (isinstance(kind, String) and kind.length is None):
            check_text(where, value)
        elif isinstance(kind, String):
            check_name(where, value, kind.length)
        elif isinstance(kind, Float):
            check_float(where, value)
        elif isinstance(kind, BigInteger | Integer) and not isinstance(value, bool):
            check_integer(where, value, INT64 if isinstance(kind, BigInteger) else INT32)
        elif isinstance(kind, JSON):
            check_json(where, value)


def check_name(where: str, value: str, length: int) -> None:
    if len(value) > length:
        raise InputError(f"{where} is {len(value)} characters long; the store holds {length}")
    if _CONTROL.search(value):
        raise InputError(f"{where} {value[:40]!r} holds a control character")


def check_text(where: str, value: str) -> None:
    if "\x00" in value:
        raise InputError(f"{where} holds a NUL character")


def check_float(where: str, value: float) -> None:
    if not math.isfinite(value):
        raise InputError(f"{where} is not a finite number ({value})")


def check_integer(where: str, value: int, bounds: tuple[int, int]) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise InputError(f"{where} = {_short(value)} is outside {bounds[0]} .. {bounds[1]}")


def check_json(where: str, value: Any) -> None:
    """Walk a JSON value: no NUL in any string or key, finite floats, 64-bit integers."""
    if isinstance(value, str):
        check_text(where, value)
    elif isinstance(value, float):
        check_float(where, value)
    elif isinstance(value, int) and not isinstance(value, bool):
        check_integer(where, value, INT64)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(where, str(key))
            check_json(where, item)
    elif isinstance(value, list | tuple):
        for item in value:
            check_json(where, item)


def _short(value: int) -> str:
    text = str(value) if abs(value) < 10**30 else f"~10^{len(str(abs(value))) - 1}"
    return text
