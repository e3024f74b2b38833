"""Server interceptor: ServiceError -> status (errors.py's table), metrics per call, no crash.

A request whose bytes do not parse as the method's message (e.g. invalid UTF-8 in a string field)
gets INVALID_ARGUMENT here; gRPC itself would answer INTERNAL "Exception deserializing request!"."""
from __future__ import annotations

import logging
import time

import grpc

from .errors import InvalidArgument, ServiceError
from .metrics import LATENCY, REQUESTS

log = logging.getLogger(__name__)


def _code_of(context) -> str:
    code = context.code() if hasattr(context, "code") else None
    return (code or grpc.StatusCode.OK).name


# A status message travels in a gRPC header, percent-encoded (a non-ASCII byte takes 3), and a
# client drops headers over 8 KiB (soft limit) to 16 KiB: a message that quotes a 1 MB input would
# reach the caller as RESOURCE_EXHAUSTED "Stream removed" instead of its status.
MAX_MESSAGE_BYTES = 2000


def _short(message: str) -> str:
    encoded = message.encode("utf-8", "replace")
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return message
    kept = encoded[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore")
    return f"{kept}... (cut: {len(message)} characters in all)"


def _handle(method: str, exc: BaseException, context) -> None:
    if isinstance(exc, ServiceError):
        REQUESTS.labels(exc.count_as or method, exc.code.name).inc()
        context.abort(exc.code, _short(exc.message))
    log.exception("unexpected error in %s", method)
    REQUESTS.labels(method, "INTERNAL").inc()
    context.abort(grpc.StatusCode.INTERNAL,
                  _short(f"internal error in {method}: {type(exc).__name__}: {exc}"))


class _Undecodable:
    """What a request that does not parse becomes, so that the handler can answer
    INVALID_ARGUMENT (a deserializer that raises makes gRPC answer INTERNAL)."""

    def __init__(self, error: Exception):
        self.error = error


def _lenient(deserializer):
    if deserializer is None:
        return None

    def deserialize(data):
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - DecodeError and whatever else a parser raises
            return _Undecodable(exc)
    return deserialize


def _undecodable(method: str, request: _Undecodable) -> InvalidArgument:
    return InvalidArgument(f"{method}: the request does not parse as the method's message "
                           f"({request.error}); send the request message that the .proto defines "
                           "(strings must be valid UTF-8)")


def _parsed(request, method: str):
    if isinstance(request, _Undecodable):
        raise _undecodable(method, request)
    return request


def _parsed_stream(requests, method: str):
    for request in requests:
        yield _parsed(request, method)


class ServiceInterceptor(grpc.ServerInterceptor):
    """Maps ServiceError to its status, counts and times every call of the wrapped services."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        # Health and reflection: their errors (a refused token) go through the table too, but
        # their successful calls (probes, long Watch streams) are not ours to count or time.
        timed = not method.startswith("/grpc.")

        if handler.unary_unary or handler.stream_unary:
            inner = handler.unary_unary or handler.stream_unary
            check = _parsed if handler.unary_unary else _parsed_stream

            def unary(request, context):
                start, label = time.perf_counter(), method
                try:
                    response = inner(check(request, method), context)
                except ServiceError as exc:
                    label = exc.count_as or method
                    _handle(method, exc, context)
                except Exception as exc:  # noqa: BLE001 - must never crash the server
                    if _is_abort(context):
                        REQUESTS.labels(method, _code_of(context)).inc()
                        raise
                    _handle(method, exc, context)
                else:
                    if timed:
                        REQUESTS.labels(method, _code_of(context)).inc()
                    return response
                finally:
                    if timed:
                        LATENCY.labels(label).observe(time.perf_counter() - start)

        else:
            inner = handler.unary_stream or handler.stream_stream
            check = _parsed if handler.unary_stream else _parsed_stream

            def unary(request, context):  # a generator: the streaming variants
                start, label = time.perf_counter(), method
                try:
                    yield from inner(check(request, method), context)
                except ServiceError as exc:
                    label = exc.count_as or method
                    _handle(method, exc, context)
                except Exception as exc:  # noqa: BLE001
                    if _is_abort(context):
                        REQUESTS.labels(method, _code_of(context)).inc()
                        raise
                    _handle(method, exc, context)
                else:
                    if timed:
                        REQUESTS.labels(method, _code_of(context)).inc()
                finally:
                    if timed:
                        LATENCY.labels(label).observe(time.perf_counter() - start)
        make = handler_factory(handler)
        return make(unary, request_deserializer=_lenient(handler.request_deserializer),
                    response_serializer=handler.response_serializer)


def handler_factory(handler: grpc.RpcMethodHandler | None):
    """The grpc.*_rpc_method_handler that makes a handler of the same kind as `handler` (unary
    for None: a method the server does not have)."""
    if handler is None or handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler
    return grpc.stream_stream_rpc_method_handler


def _is_abort(context) -> bool:
    # context.abort() raises a bare Exception after setting the call's code: let it through.
    code = context.code() if hasattr(context, "code") else None
    return code is not None and code != grpc.StatusCode.OK
