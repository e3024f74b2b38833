"""pymilvus failures -> our error table, and the deadline of each Milvus call.

Every call to Milvus carries a timeout: --milvus-timeout-s, shortened to the gRPC caller's
deadline (store.time_left), so that a lost Milvus answers UNAVAILABLE before the caller gives up.
A failure of Milvus itself (unreachable, timed out, refusing) is UNAVAILABLE in one short line:
what we tried, the server, the gRPC status (or Milvus's error code) and Milvus's own message.

A timeout alone does not bound a call: pymilvus 3 answers a gRPC error by reconnecting in place,
in the calling thread (waiting up to the client's timeout, 5 s, for the new channel), and by
retrying with the whole timeout again. A call made with `calls.timeout()` (inside
`calls.failures()`: every call answering a client) therefore ends at its first gRPC error, and
the caller (whose client retries UNAVAILABLE) gets UNAVAILABLE within its deadline. Start-up,
the first ingest and the health watch, where no caller waits, keep pymilvus's retries and its
reconnect: the watch, polling every 2 s, is what swaps in a fresh channel when Milvus is back.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
from urllib.parse import urlsplit, urlunsplit

import grpc
from pymilvus.exceptions import MilvusException

from servekit.errors import Unavailable

from ..store import time_left

log = logging.getLogger("index_service.milvus")
MAX_MESSAGE = 300  # characters of an UNAVAILABLE message, at most (longer names aside)
NOT_LOADED_HINT = " (the collection is not loaded yet, e.g. after a Milvus restart: retry shortly)"

# Set by failures() for the block; True once calls.timeout() gave the call in it a deadline.
_BOUNDED: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("milvus_bounded",
                                                                            default=None)


def redacted_uri(uri: str) -> str:
    """The URI for logs and messages: a `user:password@` in it (pymilvus takes one) left out."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class MilvusCalls:
    """The endpoint's name for messages (credentials left out) and the default deadline of one
    call."""

    def __init__(self, uri: str, timeout_s: float):
        self.uri, self.timeout_s = redacted_uri(uri), timeout_s
        netloc = urlsplit(uri).netloc
        self._userinfo = netloc.rpartition("@")[0] if "@" in netloc else ""

    def timeout(self) -> float:
        """The deadline of the Milvus call about to run in failures()'s block, which then ends
        at its first gRPC error instead of pymilvus's retries (see the module's docstring)."""
        bounded = _BOUNDED.get()
        if bounded is not None:
            bounded[0] = True
        return time_left(self.timeout_s)

    @contextlib.contextmanager
    def failures(self, what: str):
        """Raise Unavailable naming the server when the Milvus call in the block fails."""
        token = _BOUNDED.set([False])
        try:
            yield
        except (MilvusException, grpc.RpcError, OSError, TimeoutError) as exc:
            raise Unavailable(self.message(what, exc)) from None
        finally:
            _BOUNDED.reset(token)

    def message(self, what: str, exc: BaseException) -> str:
        """One short line: "the Milvus server at URI could not WHAT: STATUS: Milvus's message"."""
        status, text = status_of(exc)
        if self._userinfo:  # pymilvus's own text may name the address it dialled
            text = text.replace(self._userinfo, "***")
        hint = NOT_LOADED_HINT if "not loaded" in text else ""
        head = f"the Milvus server at {self.uri} could not {what}: {status}: "
        return head + _cut(text, max(60, MAX_MESSAGE - len(head) - len(hint))) + hint


def status_of(exc: BaseException) -> tuple[str, str]:
    """(the gRPC status name, or "Milvus error N" for Milvus's own; Milvus's message) of a
    failure, without pymilvus's wrapping (retry notes, channel state, debug strings)."""
    rpc = _rpc_error(exc)
    if rpc is not None:
        code = rpc.code()
        return getattr(code, "name", str(code)), _one_line(rpc.details() or "")
    if isinstance(exc, MilvusException):
        code = exc.code
        name = code.name if isinstance(code, grpc.StatusCode) else f"Milvus error {code}"
        return name, _one_line(exc.message)
    return type(exc).__name__, _one_line(str(exc))


def describe(exc: BaseException) -> str:
    status, text = status_of(exc)
    return _cut(f"{status}: {text}", MAX_MESSAGE)


def _rpc_error(exc: BaseException) -> grpc.RpcError | None:
    """The gRPC error itself, or the one pymilvus wrapped in a MilvusException."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
            return exc
        exc, seen = exc.__cause__, seen + 1
    return None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters, cut in the middle: Milvus's messages wrap the cause last."""
    if len(text) <= limit:
        return text
    head = (limit - 5) // 2
    return f"{text[:head].rstrip()} ... {text[len(text) - (limit - 5 - head):].lstrip()}"


def _bounded(recover):
    """pymilvus's error callback (reconnect in place, then retry), kept where no caller waits;
    in a call made with calls.timeout(), a gRPC error ends the call at once (no reconnect, no
    retry with the whole timeout again) and a Milvus error is not retried."""
    def on_rpc_error(error):
        bounded = _BOUNDED.get()
        if not (bounded and bounded[0]):
            return recover(error)
        if isinstance(error, grpc.RpcError):
            raise error
        return False
    on_rpc_error.bounded = True
    return on_rpc_error


def _install() -> None:
    """Wrap the error callback pymilvus's connection manager gives every client's handler."""
    try:
        from pymilvus.client.connection_manager import ConnectionManager
    except ImportError:  # pymilvus < 3: no in-place reconnect
        return
    register = ConnectionManager._register_error_callback
    if getattr(register, "bounded", False):
        return

    def register_bounded(self, handler):
        register(self, handler)
        handler._on_rpc_error = _bounded(handler._on_rpc_error)
    register_bounded.bounded = True
    ConnectionManager._register_error_callback = register_bounded


_install()
