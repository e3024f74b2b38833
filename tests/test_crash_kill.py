"""Crash test over gRPC (bench/crash_soak.py, short): a real embedder and index service; two
clients stream upserts and deletes while the index service is SIGKILLed at random moments (5
times, compaction every 8 writes so that kills land in it too) and restarted. Afterwards every
acknowledged upsert is served as sent, every acknowledged delete is absent, nothing of a rejected
batch exists, and the store opens cleanly (after the kills, and after a clean stop).

The long run: .venv/bin/python -m bench.crash_soak --kills 20 --seconds 300
"""
from __future__ import annotations

import pytest

from bench import crash_soak
from tests.test_index_support import write_tiny_csv

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_sigkill_under_writes_loses_no_acknowledged_write(shared_embedder, tmp_path):
    figures = crash_soak.run(embedder_address=shared_embedder.address,
                             catalog=write_tiny_csv(tmp_path / "tiny.csv"), data_dir=tmp_path / "data",
                             kills=5, seconds=40, seed=7)
    print(f"\ncrash test: {figures}")
    assert figures["problems"] == []
    assert figures["writes_lost"] == 0, f"lost or wrong: {figures['lost_ids']}"
    assert figures["kills_survived"] == 5
    assert figures["writes_acknowledged"] > 20 and figures["ids_checked"] > 20
