"""A store wrapper that times every call, for the store-latency metric.

It wraps whichever IMetadataStore is configured, so the web layer measures
both backends the same way and neither store knows about metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ministry.interfaces import ILease, IMetadataStore

Observer = Callable[[str], Callable[[float], None]]


@implementer(IMetadataStore)
class TimedStore:
    """Delegates to ``store``, reporting each Deferred call's duration."""

    def __init__(self, store: IMetadataStore, observer: Observer) -> None:
        self._store = store
        self._observer = observer

    def subscribe(self, callback: Callable[[str], None]) -> None:
        self._store.subscribe(callback)

    def lease(self, name: str) -> ILease:
        """The wrapped store's lease, untimed: it returns a lease, not a Deferred."""
        return self._store.lease(name)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name not in IMetadataStore.names() or not callable(method):
            return method
        observe = self._observer(name)

        def timed(*args: Any, **kwargs: Any) -> Deferred:
            started = time.monotonic()
            result: Deferred = method(*args, **kwargs)

            def record(outcome: Any) -> Any:
                observe(time.monotonic() - started)
                return outcome

            return result.addBoth(record)

        return timed
