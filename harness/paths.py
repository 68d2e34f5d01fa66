"""Where budgetbench finds its data files and keeps its default database.

The suite specs (`suite/`) and site templates (`site/`) sit at the top of a checkout. A wheel
carries copies inside `harness/_data/` (see pyproject.toml), which win when present, so an
installed budgetbench never picks up an unrelated `suite/` directory beside site-packages.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent


def _data_dir(name: str) -> Path:
    bundled = PACKAGE_DIR / "_data" / name
    if bundled.is_dir():
        return bundled
    return CHECKOUT_DIR / name


def suite_root() -> Path:
    """The directory holding the versioned suites (`v1/`, `v2/`, ...).

    `BUDGETBENCH_SUITE_DIR` points elsewhere: specs for tasks installed outside this package.
    """
    configured = os.environ.get("BUDGETBENCH_SUITE_DIR")
    if configured:
        return Path(configured).expanduser()
    return _data_dir("suite")


def site_root() -> Path:
    """The directory holding the Jinja templates and static assets of the leaderboard site."""
    return _data_dir("site")


def is_checkout() -> bool:
    """True when running from a source checkout (editable install or plain clone)."""
    return not (PACKAGE_DIR / "_data").is_dir() and (CHECKOUT_DIR / "pyproject.toml").is_file()


def cache_dir() -> Path:
    """Where tasks keep prepared data (tokenizers, tokenized corpora, trained checkpoints).

    `BUDGETBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/budgetbench` (default `~/.cache/budgetbench`).
    Deleting it only costs preparation time: every cached file is keyed by what it was made from.
    """
    configured = os.environ.get("BUDGETBENCH_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "budgetbench"


def default_db_path() -> Path:
    """The SQLite file used when neither --db nor BUDGETBENCH_DB is given.

    In a checkout it is `results/budgetbench.db` (ignored by git); an installed budgetbench uses
    `$XDG_DATA_HOME/budgetbench/budgetbench.db` (default `~/.local/share/...`).
    """
    if is_checkout():
        return CHECKOUT_DIR / "results" / "budgetbench.db"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "budgetbench" / "budgetbench.db"


SLUG_LIMIT = 64


def slug(text: str) -> str:
    """A file-name-safe form of a string from the data, used for every path the site writes.

    Letters, digits, `_` and `-` are kept (no dots, so no `..`; no `/`, so one path segment);
    anything else, or a name over `SLUG_LIMIT` characters, gets a hash of the original appended,
    so two different names never share a file."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:SLUG_LIMIT]
    if clean == text:
        return clean
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{clean}-{digest[:12]}" if clean else digest[:16]
