"""Health follows Milvus while serving: a thread asks Milvus a cheap question every few seconds
(is the collection loaded?) and sets the service NOT_SERVING while the answer is no or does not
come (load balancers and orchestrators route around this replica), SERVING again once it is yes.
Calls in between answer UNAVAILABLE within their deadline (errors.py); nothing needs a restart.

"Answers" is not enough: a Milvus server that restarts answers within seconds but reloads its
collections for up to ~30 s more (its old session must expire), failing every query meanwhile.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("index_service.milvus")


class HealthWatch:
    def __init__(self, check: Callable[[], object], set_serving: Callable[[bool], None], *,
                 what: str, interval_s: float = 2.0):
        self.check, self.set_serving, self.what = check, set_serving, what
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

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
                reachable = True
            except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
                reachable, reason = False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            if reachable != self.reachable:
                self.reachable = reachable
                if reachable:
                    log.warning("%s is ready again: SERVING", self.what)
                else:
                    log.error("%s is not ready (%s): NOT_SERVING until it is", self.what, reason)
                self.set_serving(reachable)
