"""Domain errors, each carrying the HTTP status a client should see.

The web layer turns these into responses in one place (Klein's
``handle_errors``); the core raises them without knowing about HTTP
machinery, only the number.
"""

from __future__ import annotations


class MinistryError(Exception):
    """A refusal with a reason a user can act on."""

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(MinistryError):
    """The request is malformed or its content fails a check."""

    status = 400


class FileExists(MinistryError):
    """A filename already taken in a project with other bytes."""

    status = 409

    @classmethod
    def taken(cls, filename: str, project: str, sha256: str) -> FileExists:
        """The refusal every path gives (its start is what twine looks for).

        ``sha256`` is that of the bytes the filename already holds.
        """
        return cls(
            f"File already exists: {filename} was already uploaded to {project} with other "
            f"contents (sha256 {sha256}). A filename always means the same bytes: upload "
            "under a new version."
        )


class TooLarge(MinistryError):
    """A body or archive exceeds a configured cap."""

    status = 413


class NotFound(MinistryError):
    """Nothing by that name."""

    status = 404


class NotAcceptable(MinistryError):
    """No representation matches the ``Accept`` header."""

    status = 406


class StoreUnavailable(MinistryError):
    """The metadata store cannot be reached right now."""

    status = 503


class StorageUnavailable(MinistryError):
    """The file storage (a directory, a bucket) cannot be written or read right now."""

    status = 503


class Unauthorized(MinistryError):
    """No credentials, or wrong ones: the client should ask for (other) credentials."""

    status = 401


class Forbidden(MinistryError):
    """Known credentials that do not allow this; the message says why."""

    status = 403


class FilenameReused(BadRequest):
    """A filename that belonged to a deleted file, which can never come back.

    PyPI refuses it with 400 whatever the bytes, so that a filename seen once
    can never be served with different bytes, even after a deletion. The
    message starts as PyPI's does, which is what people search for.
    """

    def __init__(self, filename: str, project: str) -> None:
        super().__init__(
            f"This filename has already been used, use a different version: {filename} "
            f"was deleted from {project}, and a deleted filename is never accepted again."
        )


class SdistExists(BadRequest):
    """A second sdist for a release that has one, under another filename or extension.

    400 as on PyPI, whose message this starts with, rather than 409:
    ``twine upload --skip-existing`` takes a 409 (or a 400 saying "already
    exists") to mean "this very file is there" and skips it silently, and
    the user would believe a different sdist had been published.
    """

    def __init__(self, filename: str, project: str, version: str, existing: str) -> None:
        super().__init__(
            f"Only one sdist may be uploaded per release: {project} {version} has "
            f"{existing}, and {filename} would be a second one. Publish it as a new version."
        )


class InsufficientStorage(MinistryError):
    """The disk is full: the request was fine, and may succeed once space is freed.

    507, not a 4xx: the client did nothing wrong, and twine retries a 5xx.
    """

    status = 507
