"""Health follows Milvus while serving: a thread asks Milvus every few seconds whether the
collection is loaded, then runs one real search (one vector, limit 1, the store's consistency, a
2 s timeout), and sets the service NOT_SERVING while either fails or does not come (load
balancers and orchestrators route around this replica), SERVING again once both succeed.
Calls in between answer UNAVAILABLE within their deadline (errors.py); nothing needs a restart.

"Answers" is not enough, nor is "loaded": a Milvus server that restarts answers within seconds
but reloads its collections for up to ~30 s more, failing every query meanwhile; and it reports
the collection loaded while its searches still time out (measured on 2.3.5: for 8-14 s, until
the killed server's query node is forgotten). Only a search shows that searches work.

The watch's calls run outside any caller's deadline, with pymilvus's own retries and reconnect
(errors.py): when Milvus is back, it is the watch that gets the client a fresh channel.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .errors import describe
from .schema import VECTOR

log = logging.getLogger("index_service.milvus")
READ_TIMEOUT_S = 2.0


def search_probe(store) -> Callable[[], None]:
    """One search as callers run them (the vector field, the store's consistency): one unit
    vector, one hit at most (an empty collection answers with none)."""
    vector = [1.0] + [0.0] * (int(store.dimension) - 1)
    params = {"metric_type": "IP", "params": {"ef": max(int(store.ef_search), 1)}}

    def probe() -> None:
        store.client.search(store.collection, data=[vector], anns_field=VECTOR, limit=1,
                            output_fields=[], search_params=params, timeout=READ_TIMEOUT_S,
                            consistency_level=store.consistency)
    return probe


class HealthWatch:
    """`check()` (is the collection loaded?), then `read()` (a real search: search_probe of the
    store; None: the load state alone), every `interval_s`."""

    def __init__(self, check: Callable[[], object], set_serving: Callable[[bool], None], *,
                 what: str, interval_s: float = 2.0, read: Callable[[], object] | None = None):
        self.check, self.set_serving, self.what = check, set_serving, what
        self.read = read
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="milvus-health", daemon=True)
        self.reachable = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def ready(self) -> str | None:
        """None when Milvus answers a search; else why not, in one line."""
        try:
            self.check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
            return describe(exc)
        if self.read is None:
            return None
        try:
            self.read()
        except Exception as exc:  # noqa: BLE001
            return f"loaded, but a search failed: {describe(exc)}"
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            reason = self.ready()
            reachable = reason is None
            if reachable != self.reachable:
                self.reachable = reachable
                if reachable:
                    log.warning("%s is ready again: SERVING", self.what)
                else:
                    log.error("%s is not ready (%s): NOT_SERVING until it is", self.what, reason)
                self.set_serving(reachable)
