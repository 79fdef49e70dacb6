"""Domain errors, each carrying the HTTP status a client should see.

The web layer turns these into responses in one place (Klein's
``handle_errors``); the core raises them without knowing about HTTP
machinery, only the number.
"""


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
