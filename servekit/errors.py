"""The one table that maps the services' errors to gRPC status codes.

Handlers (and the token check, servekit.auth) raise a ServiceError subclass with a message a
person can act on; the ServiceInterceptor (interceptors.py) turns it into
`context.abort(code, message)` and counts it. Anything else that escapes a handler is logged with
its traceback and answered INTERNAL, never a crash. Both services use this one table.
"""
from __future__ import annotations

import grpc


class ServiceError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


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
    code = grpc.StatusCode.UNAUTHENTICATED


class Unimplemented(ServiceError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Cancelled(ServiceError):
    """The work was dropped because the caller went away (or the server is stopping)."""
    code = grpc.StatusCode.CANCELLED
