"""What stops the daemon before it starts, said in one line.

A typo in ``--data-dir`` or a port another process holds is the commonest
first-day mistake, and twistd's answer to both is a traceback of fifteen
lines (or a tree of directories created where nobody meant). Each check here
raises ``SystemExit`` with a message naming the problem and the option, which
twistd prints as it prints a usage error.
"""

from __future__ import annotations

import os
import tempfile

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IProtocolFactory


def prepare_data_dir(path: str) -> None:
    """Make ``path`` if only its last part is missing; refuse anything that will not take files.

    A missing parent is refused rather than created: ``--data-dir /srv/minstry/data``
    is a typo to report, not a tree to make.
    """
    where = os.path.abspath(path)
    if not os.path.exists(where):
        parent = os.path.dirname(where)
        if not os.path.isdir(parent):
            raise SystemExit(
                f"ministry: --data-dir {path}: its parent directory {parent} does not exist"
            )
        try:
            os.mkdir(where)
        except OSError as exc:
            raise SystemExit(
                f"ministry: --data-dir {path}: cannot create it: {exc.strerror}"
            ) from None
    if not os.path.isdir(where):
        raise SystemExit(f"ministry: --data-dir {path}: not a directory")
    try:
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as exc:
        raise SystemExit(
            f"ministry: --data-dir {path}: cannot write in it: {exc.strerror}"
        ) from None


class _ListeningService(StreamServerEndpointService):
    """The web server's port service, whose failure to listen is one line, not a traceback."""

    def __init__(self, description: str, factory: IProtocolFactory) -> None:
        from twisted.internet import endpoints, reactor  # installed by twistd by now

        super().__init__(endpoints.serverFromString(reactor, description), factory)
        self.description = description
        self._raiseSynchronously = True  # as strports.service sets it: listen errors raise

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except CannotListenError as exc:
            reason = getattr(exc.socketError, "strerror", None) or str(exc.socketError)
            raise SystemExit(
                f"ministry: --port {self.description}: cannot listen: {reason}"
                " (is another server, or another ministry, on it?)"
            ) from None


def listening(description: str, factory: IProtocolFactory) -> IService:
    """``strports.service(description, factory)``, failing to listen in one line."""
    return _ListeningService(description, factory)
