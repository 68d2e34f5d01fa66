"""Writing the site's files: every page and download goes through `PageWriter`, which keeps it
under the output directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import InputError


class PageWriter:
    """Writes pages under the output directory and counts them.

    Every path is made by the `harness.publish.links` functions from slugs; `text` checks once
    more that it stays under the output directory, so a crafted bundle can never write
    elsewhere."""

    def __init__(self, root: Path, environment) -> None:
        self.root = root
        self.environment = environment
        self.pages = 0

    def page(self, path: str, template: str, **context: Any) -> None:
        depth = path.count("/")
        html = self.environment.get_template(template).render(
            root="../" * depth, version=__version__, **context
        )
        self.text(path, html)
        self.pages += 1

    def text(self, path: str, content: str) -> None:
        self.bytes(path, content.encode("utf-8"))

    def bytes(self, path: str, content: bytes) -> None:
        target = self.root / path
        parts = Path(path).parts
        if (
            "\0" in path
            or Path(path).is_absolute()
            or any(part in ("", ".", "..") for part in parts)
            or not target.resolve().is_relative_to(self.root.resolve())
        ):
            raise InputError(f"refusing to write {path!r}: outside the site directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
