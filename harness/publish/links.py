"""Where each page and file of the site lives, relative to the site's root.

Every path is made from slugs (`harness.paths.slug`), so a name from a bundle can never leave
the site's directory or collide with another; templates call these functions to link pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.paths import slug

if TYPE_CHECKING:
    from harness.score.boards import Leaderboard
    from harness.submit.results import PublishedSubmission


def run_path(run_id: str, suffix: str = ".html") -> str:
    return f"runs/{slug(run_id)}{suffix}"


def method_path(method_hash: str) -> str:
    return f"methods/{slug(method_hash[:16])}.html"


def machine_path(hardware_key: str) -> str:
    return f"machines/{slug(hardware_key)}.html"


def board_path(board: Leaderboard, suffix: str = ".html") -> str:
    return f"tasks/{slug(board.task)}/{slug(board.slug)}{suffix}"


def methodology_path(task: str) -> str:
    return f"tasks/{slug(task)}/methodology.html"


def submission_path(submission: PublishedSubmission, suffix: str = ".html") -> str:
    return f"submissions/{submission.slug}{suffix}"


def plot_path(directory: str, owner: str, name: str) -> str:
    return f"{directory}/{slug(owner)}-{slug(name)}.svg"
