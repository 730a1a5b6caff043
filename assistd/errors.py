"""Domain errors. Services raise these; the HTTP layer alone decides how they look on the wire."""

from __future__ import annotations


class AssistdError(Exception):
    """Base of every error that is the caller's to fix or to know about."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(AssistdError):
    """The request cannot be served as sent (bad value, wrong state)."""


class NotFound(AssistdError):
    """No object of this kind with this id is visible to the caller."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"No {kind} found with id '{object_id}'.")
        self.kind = kind
        self.object_id = object_id


class AuthenticationFailed(AssistdError):
    """The caller's credentials are missing or wrong."""


class RateLimited(AssistdError):
    """The caller is over a limit; it may try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after = retry_after


class ModelNotFoundError(AssistdError):
    """No configured model answers this name (strict mode)."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
        self.model = model


class ContentTooLarge(AssistdError):
    """An upload is larger than the server accepts."""
