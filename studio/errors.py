"""The one refusal the studio's services raise.

A ``StudioError`` is a ``commerce.errors.Problem`` (status, ``kind``, detail), so the API's handler
answers it as RFC 9457 problem details with no code of its own, and the CLI or an asset reads
``kind`` and ``detail`` as it does for the shop's refusals.
"""

from __future__ import annotations

from typing import Any

from commerce.errors import Problem


class StudioError(Problem):
    """A refusal a caller can show as it is: 404 (no such row in this studio), 409 (not in this
    state), 422 (not a valid value)."""

    def __init__(self, status: int, kind: str, detail: str, **extra: Any) -> None:
        super().__init__(status, kind, detail, **extra)


def not_found(what: str) -> StudioError:
    return StudioError(404, f"{what}-not-found", f"This studio has no such {what}.")


def bad_state(what: str, status: str, action: str, allowed: tuple[str, ...]) -> StudioError:
    """409 naming the state the document is in and the states the action needs."""
    return StudioError(409, "invalid-transition",
                       f"A {what} that is {status} cannot be {action} (only a {what} that is "
                       f"{' or '.join(allowed)} can).", status_now=status, allowed_from=list(allowed))
