"""pymilvus failures -> our error table, and the deadline of each Milvus call.

Every call to Milvus carries a timeout: --milvus-timeout-s, shortened to the gRPC caller's
deadline (store.time_left), so that a lost Milvus answers UNAVAILABLE before the caller gives up.
A failure of Milvus itself (unreachable, timed out, refusing) is UNAVAILABLE naming the server;
gRPC's channel reconnects by itself, so calls succeed again once Milvus is back.
"""
from __future__ import annotations

import contextlib
import logging

import grpc
from pymilvus.exceptions import MilvusException

from servekit.errors import Unavailable

from ..store import time_left

log = logging.getLogger("index_service.milvus")


class MilvusCalls:
    """The endpoint's name for messages and the default deadline of one call."""

    def __init__(self, uri: str, timeout_s: float):
        self.uri, self.timeout_s = uri, timeout_s

    def timeout(self) -> float:
        return time_left(self.timeout_s)

    @contextlib.contextmanager
    def failures(self, what: str):
        """Raise Unavailable naming the server when the Milvus call in the block fails."""
        try:
            yield
        except MilvusException as exc:
            hint = (" (the collection is not loaded yet, e.g. after a Milvus restart; the replica "
                    "waits for it, or asks for it if released: retry shortly)"
                    if "not loaded" in str(exc.message) else "")
            raise Unavailable(f"the Milvus server at {self.uri} could not {what}: "
                              f"{_one_line(exc.message)}{hint}") from None
        except (grpc.RpcError, OSError, TimeoutError) as exc:
            raise Unavailable(f"the Milvus server at {self.uri} could not {what}: "
                              f"{type(exc).__name__}: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:500]
