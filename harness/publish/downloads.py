"""The site's downloads in CSV and JSON: flat records, and cells a spreadsheet cannot run."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any


def change_record(change) -> dict[str, Any]:
    """A flat record of a detected change for the JSON and CSV downloads."""
    record = dataclasses.asdict(change)
    record["at"] = change.at.isoformat()
    record["runs_before"] = " ".join(change.runs_before)
    record["runs_after"] = " ".join(change.runs_after)
    record["software_diff"] = "; ".join(
        f"{name} {before} -> {after}"
        for name, (before, after) in sorted(change.software_diff.items())
    )
    return record


def csv_table(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if records:
        writer = csv.DictWriter(buffer, fieldnames=[csv_cell(name) for name in records[0]])
        writer.writeheader()
        writer.writerows(
            {csv_cell(key): csv_cell(value) for key, value in record.items()} for record in records
        )
    return buffer.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (`=HYPERLINK(…)`, `+`, `-`, `@`, tab,
    CR first) gets a leading `'`, OWASP's advice; numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
