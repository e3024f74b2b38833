"""The one table that maps the services' errors to gRPC status codes.

Handlers (and the token check, servekit.auth: Unauthenticated, PermissionDenied) raise a
ServiceError subclass with a message a person can act on; the ServiceInterceptor (interceptors.py) turns it into
`context.abort(code, message)` and counts it. Anything else that escapes a handler is logged with
its traceback and answered INTERNAL, never a crash. Both services use this one table.

StartError is the other kind: a server that cannot start (its port taken), one line naming the
flag; each service's entry point prints it after its name and exits with its start-up code.
"""
from __future__ import annotations

import grpc


class ServiceError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, count_as: str | None = None):
        super().__init__(message)
        self.message = message
        # The method label of the metrics when not the called method's name (e.g. "unknown" for
        # a method the server does not have: callers must not be able to add label values).
        self.count_as = count_as


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(ServiceError):
    """No token, a malformed one, or one the service does not accept."""
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    """A token the service accepts, whose role does not allow this call (a read-only token on a
    write)."""
    code = grpc.StatusCode.PERMISSION_DENIED


class Unimplemented(ServiceError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Cancelled(ServiceError):
    """The work was dropped because the caller went away (or the server is stopping)."""
    code = grpc.StatusCode.CANCELLED


class StartError(SystemExit):
    """The server cannot start (e.g. --port or --metrics-port taken): one line naming the flag,
    without the service's name. Each service's entry point catches it, prints
    `<service>: <message>` and exits with its start-up code; uncaught it still exits without a
    traceback (code 1, the message on stderr)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
