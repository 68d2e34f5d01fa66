"""The Jinja environment the pages are rendered with: autoescaping, strict undefined names, and
the filters that show numbers, times and durations the same way on every page.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from harness.paths import site_root
from harness.publish.links import (
    board_path,
    machine_path,
    method_path,
    methodology_path,
    run_path,
    submission_path,
)
from harness.score.boards import machine_details, machine_title

if TYPE_CHECKING:
    from markupsafe import Markup


def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    environment = Environment(
        loader=FileSystemLoader(site_root() / "templates"),
        autoescape=select_autoescape(["html", "atom"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_printable,
    )
    environment.filters["number"] = _number
    environment.filters["when"] = _when
    environment.filters["when_short"] = lambda moment: (
        moment.strftime("%Y-%m-%d") if moment else "–"
    )
    environment.filters["machine_title"] = machine_title
    environment.filters["duration"] = _duration
    environment.filters["iso_when"] = _iso_when
    environment.filters["markdown"] = markdown
    environment.filters["machine_details"] = machine_details
    environment.globals.update(
        run_path=run_path,
        method_path=method_path,
        machine_path=machine_path,
        board_path=board_path,
        methodology_path=methodology_path,
        submission_path=submission_path,
    )
    environment.tests["infinite"] = lambda value: isinstance(value, float) and math.isinf(value)
    return environment


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _printable(value: Any) -> Any:
    """Every printed string without control characters (a NUL in a name is an HTML parse
    error; the store keeps the name as it came)."""
    if not isinstance(value, str) or hasattr(value, "__html__"):  # Markup is already safe
        return value
    return _CONTROL.sub("\ufffd", value)


def markdown(text: str) -> Markup:
    """Docstring Markdown as HTML: CommonMark with raw HTML off (a `<script>` in a docstring is
    shown as text) and markdown-it's link check (no `javascript:` or `data:` links)."""
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    return Markup(renderer.render(text))


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if 1e4 <= abs(value) < 1e12:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _iso_when(text: str | None) -> str:
    """An ISO time from a file, shown like every other time (the text itself if unparsable)."""
    try:
        return _when(datetime.fromisoformat(text).astimezone(timezone.utc)) if text else "–"
    except (TypeError, ValueError):
        return str(text)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float | None) -> str:
    """`0.4 s`, `12.3 s`, `4 min 05 s`, `2 h 03 min`."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
