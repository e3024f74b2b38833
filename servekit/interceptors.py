"""Server interceptor: ServiceError -> status (errors.py's table), metrics per call, no crash."""
from __future__ import annotations

import logging
import time

import grpc

from .errors import ServiceError
from .metrics import LATENCY, REQUESTS

log = logging.getLogger(__name__)


def _code_of(context) -> str:
    code = context.code() if hasattr(context, "code") else None
    return (code or grpc.StatusCode.OK).name


def _handle(method: str, exc: BaseException, context) -> None:
    if isinstance(exc, ServiceError):
        REQUESTS.labels(method, exc.code.name).inc()
        context.abort(exc.code, exc.message)
    log.exception("unexpected error in %s", method)
    REQUESTS.labels(method, "INTERNAL").inc()
    context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}: {type(exc).__name__}: {exc}")


class ServiceInterceptor(grpc.ServerInterceptor):
    """Maps ServiceError to its status, counts and times every call of the wrapped services."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if method.startswith("/grpc."):  # health and reflection: not ours to count
            return handler

        if handler.unary_unary or handler.stream_unary:
            inner = handler.unary_unary or handler.stream_unary

            def unary(request, context):
                start = time.perf_counter()
                try:
                    response = inner(request, context)
                except ServiceError as exc:
                    _handle(method, exc, context)
                except Exception as exc:  # noqa: BLE001 - must never crash the server
                    if _is_abort(context):
                        REQUESTS.labels(method, _code_of(context)).inc()
                        raise
                    _handle(method, exc, context)
                else:
                    REQUESTS.labels(method, _code_of(context)).inc()
                    return response
                finally:
                    LATENCY.labels(method).observe(time.perf_counter() - start)

            factory = (grpc.unary_unary_rpc_method_handler if handler.unary_unary
                       else grpc.stream_unary_rpc_method_handler)
        else:
            inner = handler.unary_stream or handler.stream_stream

            def unary(request, context):  # a generator: the streaming variants
                start = time.perf_counter()
                try:
                    yield from inner(request, context)
                except ServiceError as exc:
                    _handle(method, exc, context)
                except Exception as exc:  # noqa: BLE001
                    if _is_abort(context):
                        REQUESTS.labels(method, _code_of(context)).inc()
                        raise
                    _handle(method, exc, context)
                else:
                    REQUESTS.labels(method, _code_of(context)).inc()
                finally:
                    LATENCY.labels(method).observe(time.perf_counter() - start)

            factory = (grpc.unary_stream_rpc_method_handler if handler.unary_stream
                       else grpc.stream_stream_rpc_method_handler)
        return factory(unary, request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)


def _is_abort(context) -> bool:
    # context.abort() raises a bare Exception after setting the call's code: let it through.
    code = context.code() if hasattr(context, "code") else None
    return code is not None and code != grpc.StatusCode.OK
