"""Slowing down repeated failed logins from one address, in bounded memory."""

from __future__ import annotations

from collections import OrderedDict


class FailureThrottle:
    """How long to make an address wait, from its recent failed logins.

    The first ``free`` failures cost nothing (typing mistakes); each one
    after doubles the wait from ``base`` seconds, up to ``cap``. A failure
    is forgotten every ``decay`` seconds without a new one, so an address
    recovers on its own, and success resets nothing (else one known account
    would let an attacker wipe the count between guesses). At most
    ``max_entries`` addresses are remembered, the least recently failing
    forgotten first: memory stays bounded whatever an attacker sends.
    The clock is an argument, so the rules are testable without waiting.
    """

    def __init__(
        self,
        free: int = 3,
        base: float = 0.25,
        cap: float = 5.0,
        decay: float = 60.0,
        max_entries: int = 10_000,
    ) -> None:
        self.free = free
        self.base = base
        self.cap = cap
        self.decay = decay
        self.max_entries = max_entries
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def _count(self, address: str, now: float) -> int:
        count, since = self._failures.get(address, (0, now))
        left = count - int(max(0.0, now - since) // self.decay)
        if left <= 0:
            self._failures.pop(address, None)
            return 0
        return left

    def delay(self, address: str, now: float) -> float:
        """Seconds to wait before checking credentials from ``address``."""
        over = self._count(address, now) - self.free
        return 0.0 if over <= 0 else min(self.cap, self.base * 2 ** (over - 1))

    def failed(self, address: str, now: float) -> None:
        """Count one more failed login from ``address``."""
        self._failures[address] = (self._count(address, now) + 1, now)
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_entries:
            self._failures.popitem(last=False)
