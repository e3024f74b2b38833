"""Crash test for index_service.wal: a writer process appends from several threads (and
checkpoints now and then), printing every acknowledged seq; it is SIGKILLed at random moments and
restarted. After every kill the log must open cleanly and hold every acknowledged write with its
exact payload.

`make test` runs 10 kills. A longer run (also a script):
    RECSYS_WAL_CRASH_KILLS=200 .venv/bin/python -m pytest tests/test_wal_crash.py -s
    .venv/bin/python tests/test_wal_crash.py --kills 200 [--dir DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KILLS = int(os.environ.get("RECSYS_WAL_CRASH_KILLS", "10"))
WRITER_THREADS = 3


def _payload(round_no: int, thread: int, i: int) -> bytes:
    """Deterministic, varied sizes (a few bytes to ~200 kB), so records straddle pages."""
    rng = random.Random(f"{round_no}/{thread}/{i}")
    size = rng.choice([rng.randint(0, 64), rng.randint(64, 8192), rng.randint(8192, 200_000)])
    return rng.randbytes(size)


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:20]


# -- the writer: runs in the child process ----------------------------------------------------------

def writer_main(log_path: str, acks_path: str, round_no: int) -> None:
    sys.path.insert(0, str(ROOT))
    from index_service.wal import WriteAheadLog

    wal = WriteAheadLog(log_path)
    acks = open(acks_path, "a", buffering=1)          # line-buffered: one write() per line
    print_lock = threading.Lock()
    acks.write(f"open {wal.base_sequence} {wal.last_sequence} {wal.torn_bytes_dropped}\n")
    print("ready", flush=True)

    def append_forever(thread: int) -> None:
        i = 0
        while True:
            payload = _payload(round_no, thread, i)
            op = "delete" if i % 5 == 4 else "upsert"
            seq = wal.append(op, payload)
            with print_lock:
                acks.write(f"ack {seq} {op} {_digest(payload)}\n")
            i += 1

    for t in range(WRITER_THREADS):
        threading.Thread(target=append_forever, args=(t,), daemon=True).start()
    while True:                                       # compaction now and then, as the index will
        time.sleep(random.uniform(0.1, 0.4))
        target = max(wal.base_sequence, wal.last_sequence - 100)
        wal.checkpoint(target)
        with print_lock:
            acks.write(f"checkpoint {target}\n")


# -- the checker: runs in the test ------------------------------------------------------------------

class Ledger:
    """What the writers acknowledged, across all rounds."""

    def __init__(self):
        self.acked: dict[int, tuple[str, str]] = {}   # seq -> (op, digest)
        self.checkpoint = 0
        self.opens = self.torn_tails = 0

    def read(self, acks_path: Path) -> None:
        for line in acks_path.read_text().splitlines(keepends=True):
            if not line.endswith("\n"):
                continue                              # cut short by the kill: not acknowledged
            kind, *fields = line.split()
            if kind == "ack":
                seq, op, digest = int(fields[0]), fields[1], fields[2]
                assert self.acked.get(seq, (op, digest)) == (op, digest), f"seq {seq} acked twice"
                self.acked[seq] = (op, digest)
            elif kind == "checkpoint":
                self.checkpoint = max(self.checkpoint, int(fields[0]))
            elif kind == "open":
                self.opens += 1
        acks_path.unlink()

    def check(self, log_path: Path) -> tuple[int, list[int]]:
        """Open the log as a restart would: (acknowledged writes it holds, those lost or wrong)."""
        from index_service.wal import WriteAheadLog
        with WriteAheadLog(log_path) as wal:
            self.torn_tails += wal.torn_bytes_dropped > 0     # a kill cut a record short
            assert wal.base_sequence >= self.checkpoint
            found = {seq: (op, _digest(payload)) for seq, op, payload in
                     wal.replay(after_seq=wal.base_sequence)}
            expected = {seq: v for seq, v in self.acked.items() if seq > wal.base_sequence}
            lost = sorted(seq for seq in expected if found.get(seq) != expected[seq])
            if self.acked:
                assert wal.last_sequence >= max(self.acked)
            return len(expected), lost


def run_crash_rounds(directory: Path, kills: int, *, seed: int, budget_s: float) -> dict:
    rng = random.Random(seed)
    log_path, ledger = directory / "catalog.wal", Ledger()
    deadline, rounds, checked, lost = time.monotonic() + budget_s, 0, 0, set()
    while rounds < kills and time.monotonic() < deadline:
        acks_path = directory / f"acks-{rounds}.txt"
        proc = subprocess.Popen(
            [sys.executable, __file__, "--writer", str(log_path), str(acks_path), str(rounds)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Some kills land while the interpreter starts or the log opens (and repairs), most
        # while the writers append and checkpoint.
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.0, 0.8))
        else:
            assert proc.stdout.readline() == "ready\n", f"writer failed:\n{proc.communicate()}"
            time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, f"writer died by itself:\n{stderr}"
        if acks_path.exists():
            ledger.read(acks_path)
        checked, lost_now = ledger.check(log_path)
        lost.update(lost_now)
        rounds += 1
    return {"kills": rounds, "acknowledged": len(ledger.acked), "lost": sorted(lost),
            "checkpoints_acked": ledger.checkpoint, "writes_still_in_log": checked,
            "writer_starts_that_opened": ledger.opens, "torn_tails_repaired": ledger.torn_tails}


@pytest.mark.timeout(300)
def test_sigkill_at_random_moments_never_loses_an_acknowledged_write(tmp_path):
    figures = run_crash_rounds(tmp_path, KILLS, seed=7, budget_s=max(60.0, KILLS * 2.0))
    print(f"\nWAL crash test: {figures}")
    assert figures["lost"] == [], "acknowledged writes lost or replayed with another payload"
    assert figures["kills"] >= min(KILLS, 5)
    assert figures["acknowledged"] > 0, "the writer never got a write acknowledged"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writer", nargs=3, metavar=("LOG", "ACKS", "ROUND"))
    parser.add_argument("--kills", type=int, default=KILLS)
    parser.add_argument("--dir", help="where the log lives (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.writer:
        writer_main(args.writer[0], args.writer[1], int(args.writer[2]))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        start = time.monotonic()
        figures = run_crash_rounds(Path(directory), args.kills, seed=args.seed,
                                   budget_s=args.kills * 5.0)
        print({**figures, "seconds": round(time.monotonic() - start, 1)})


if __name__ == "__main__":
    main()
