"""What a failed call raises: one exception class per gRPC status that a caller may act on.

Every message names the service and its address and says what to do; `from_rpc_error` is the one
place that maps a grpc.RpcError to these.
"""
from __future__ import annotations

from typing import Callable

import grpc

from .connect_failures import is_connect_failure, last_error, tls_hint

# How a user of RecsysClient or of the CLI sets the CA and a client certificate, for TLS hints.
_CA_FLAG = "tls_ca= / --tls-ca"
_CLIENT_CERT_FLAGS = "credentials= with one / --tls-client-cert and --tls-client-key"


class RecsysError(Exception):
    """Base of every error RecsysClient raises. `.code` is the gRPC status: the server's, or for a
    check the client makes before calling (a bad mode, a timeout <= 0) the status the server would
    have given; None only for a call on a closed client."""

    code: grpc.StatusCode | None = None
    hint = ""

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None,
                 service: str = "", target: str = "", details: str = ""):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.service, self.target, self.details = service, target, details

    def __str__(self) -> str:
        return self.message


class InvalidArgumentError(RecsysError, ValueError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    hint = "fix the request"


class NotFoundError(RecsysError, LookupError):
    code = grpc.StatusCode.NOT_FOUND
    hint = "check the id (`stats` shows the catalog's size; `search` finds ids)"


class UnavailableError(RecsysError, ConnectionError):
    code = grpc.StatusCode.UNAVAILABLE
    hint = "retry later"


class ResourceExhaustedError(RecsysError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    hint = "the server is overloaded: back off and retry, or send fewer calls at once"


class DeadlineExceededError(RecsysError, TimeoutError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    hint = "raise the timeout (timeout= / --timeout) or try again when the server is less busy"


_PASS_TOKEN = "--token-file PATH, RECSYS_TOKEN_FILE or RECSYS_TOKEN; token= in Python"


class UnauthenticatedError(RecsysError):
    """No token, or one the service does not hold (wrong, or removed by a rotation)."""
    code = grpc.StatusCode.UNAUTHENTICATED
    hint = (f"pass a token the {{service}} service holds ({_PASS_TOKEN}); the service's message "
            "says which credential this call needs")


class PermissionDeniedError(RecsysError):
    """A token the service holds, whose role may not make this call: a read-only token on a
    write (UpsertProducts, DeleteProducts) of the index service."""
    code = grpc.StatusCode.PERMISSION_DENIED
    hint = (f"this call needs the {{service}} service's write (full-access) token, not a "
            f"read-only one: pass that token ({_PASS_TOKEN}); a read-only token may only "
            "search, get, list and read stats")


class FailedPreconditionError(RecsysError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    hint = "the server is not in a state to do this now"


class UnimplementedError(RecsysError):
    code = grpc.StatusCode.UNIMPLEMENTED
    hint = "the server is older than this client: upgrade it"


class ServerError(RecsysError):
    """INTERNAL, UNKNOWN, DATA_LOSS...: a bug or fault on the server side."""
    code = grpc.StatusCode.INTERNAL
    hint = "see the server's log"


class CancelledError(RecsysError):
    code = grpc.StatusCode.CANCELLED
    hint = "the call was cancelled"


_BY_CODE = {cls.code: cls for cls in (
    InvalidArgumentError, NotFoundError, UnavailableError, ResourceExhaustedError,
    DeadlineExceededError, UnauthenticatedError, PermissionDeniedError, FailedPreconditionError,
    UnimplementedError, CancelledError)}
_BY_CODE[grpc.StatusCode.OUT_OF_RANGE] = InvalidArgumentError

def where_flags(service: str) -> str:
    """How a caller points at the `service` ("index", "embedder"): in Python and in the CLI."""
    return f"{service}= in Python, --{service} / RECSYS_{service.upper()} in the CLI"


def from_rpc_error(exc: grpc.RpcError, *, service: str, target: str, method: str,
                   unreachable: bool = False, connected: bool = False,
                   probe: Callable[[str], str] | None = None) -> RecsysError:
    """The RecsysError for a failed call of `method` on `service` (e.g. "index") at `target`.
    unreachable: the channel had no connection when the call failed (a deadline that passed while
    gRPC was still trying to connect is reported as UnavailableError). connected: it had one, so
    an UNAVAILABLE is the service's own answer even where its text quotes a connect failure (the
    index service's embedder down). probe: given a connect failure's text, the text that explains
    it better (client.address_probe), if any."""
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
    cls = _BY_CODE.get(code, ServerError)
    hint = cls.hint.format(service=service)
    where = f"{service} service at {target}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and unreachable:
        code, cls = grpc.StatusCode.UNAVAILABLE, UnavailableError
        details = "no connection before the deadline"
    not_reached = code == grpc.StatusCode.UNAVAILABLE and not connected and (
        unreachable or is_connect_failure(details))
    if probe is not None and not_reached and is_connect_failure(details):
        details = probe(details)
    if not_reached:
        message = f"cannot reach the {where} ({last_error(details)}): " + (
            tls_hint(details, ca_flag=_CA_FLAG, client_cert_flags=_CLIENT_CERT_FLAGS)
            or f"is it running? Start it (make run, docker-compose up) or point the client "
               f"elsewhere ({where_flags(service)})")
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        said = "" if details.strip().lower() in ("deadline exceeded", "") else f" ({details})"
        message = f"{method} on the {where}: no answer before the deadline{said}: {hint}"
    elif code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        message = f"{method} on the {where} was refused: {details}: {hint}"
    else:
        message = f"{method} on the {where} failed: {details}: {hint}"
    return cls(message, code=code, service=service, target=target, details=details)

