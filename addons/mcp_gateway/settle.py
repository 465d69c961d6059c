"""When an edited file has stayed the same long enough to be read: an editor or ``curl … >``
writes a file in parts, and a part may be valid on its own (the configuration without its
``auth:``, a rule pack without its last rules). Used by the watchers of the configuration
(identity) and of the rule files (scan)."""

from __future__ import annotations

from collections.abc import Hashable


class Settle:
    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: tuple[Hashable, float] | None = None  # (signature, first seen)

    def forget(self) -> None:
        self._seen = None

    def waited(self, sig: Hashable, now: float, need: float) -> float | None:
        """How long the file's signature ``sig`` has been seen unchanged at ``now``; None
        until that is ``need`` seconds (a new signature starts the wait)."""
        if self._seen is None or self._seen[0] != sig:
            self._seen = (sig, now)
            if need > 0:
                return None
        waited = now - self._seen[1]
        return None if waited < need else waited


__all__ = ["Settle"]
