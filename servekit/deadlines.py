"""The caller's deadline, as seconds a handler may wait, or None when the call has none.

grpcio reports a call sent without a deadline as ~9.2e18 seconds remaining, and waiting that long
(threading.Event.wait, a client call's timeout) raises OverflowError: such a call would fail with
INTERNAL. Every handler that waits reads its budget here instead of `context.time_remaining()`.
"""
from __future__ import annotations

# Anything beyond this (about 31 years) is "no deadline": no caller means a real one so long.
NO_DEADLINE_S = 1e9


def remaining_s(context) -> float | None:
    """Seconds left before the call's deadline; None when the caller set none."""
    remaining = context.time_remaining()
    if remaining is None or remaining >= NO_DEADLINE_S:
        return None
    return max(0.0, remaining)
