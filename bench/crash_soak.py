"""Crash soak: SIGKILL the index service at random moments while clients stream writes over gRPC.

A real embedder and a real index service on loopback. Writer threads send UpsertProducts (new
products, new versions of acknowledged ones, now and then a batch with one bad product that must
be rejected whole) and DeleteProducts, and record what was acknowledged. The index service is
SIGKILLed at random moments - mid-write, mid-compaction (compaction runs every few writes), now
and then while it is still starting - and restarted on the same port each time. At the end it is
restarted once more, then stopped cleanly (compacting) and started again; both times:

- every acknowledged upsert is served exactly as sent (GetProduct), every acknowledged delete is
  absent, no product of a rejected batch exists, and a write whose answer was lost with the kill
  is either fully there or fully absent (the only states allowed for it);
- the store opened cleanly: SERVING, no traceback in its log.

    .venv/bin/python -m bench.crash_soak --kills 20 --seconds 300
    (tests/test_crash_kill.py runs the same with 5 kills in make test)
"""
from __future__ import annotations

import argparse
import random
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from client.generated.recsys.v1 import index_pb2 as pb
from client.generated.recsys.v1 import index_pb2_grpc
from tests.procs import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
CALL_TIMEOUT_S = 20.0
# Reconnect at once to the restarted service (gRPC's default backoff grows to minutes).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500)]


def expected_product(p: pb.Product) -> pb.Product:
    """What GetProduct answers for an upserted product (the short category filled in)."""
    out = pb.Product()
    out.CopyFrom(p)
    out.category = p.categories[-1] if p.categories else ""
    return out


@dataclass
class Ledger:
    """Per product id: the states it may be in now (a Product, or None = absent). One writer
    thread owns each id, so an id's states change in call order."""
    allowed: dict[str, list] = field(default_factory=dict)
    acknowledged: int = 0           # write calls answered OK
    products_acknowledged: int = 0  # products in them (upserted or deleted)
    rejected: int = 0               # batches answered INVALID_ARGUMENT (nothing may be applied)
    unknown: int = 0                # calls whose answer was lost (kill, restart): either outcome
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, changes: dict[str, object], outcome: str) -> None:
        with self.lock:
            for pid, state in changes.items():
                before = self.allowed.get(pid, [None])
                if outcome == "ok":
                    self.allowed[pid] = [state]
                elif outcome == "unknown":
                    self.allowed[pid] = before + [state]
                else:
                    self.allowed[pid] = before
            if outcome == "ok":
                self.acknowledged += 1
                self.products_acknowledged += len(changes)
            elif outcome == "rejected":
                self.rejected += 1
            else:
                self.unknown += 1

    def acked_ids(self, rng: random.Random, prefix: str, n: int) -> list[str]:
        with self.lock:
            present = [pid for pid, states in self.allowed.items()
                       if pid.startswith(prefix) and len(states) == 1 and states[0] is not None]
        return rng.sample(present, min(n, len(present)))


def _product(rng: random.Random, pid: str, version: int) -> pb.Product:
    words = ["oak", "teak", "steel", "wool", "linen", "glass", "brass", "walnut", "jute", "velvet"]
    kinds = ["desk", "chair", "lamp", "rug", "shelf", "mug", "bench", "towel", "basket", "mirror"]
    w, k = rng.choice(words), rng.choice(kinds)
    return pb.Product(id=pid, title=f"{w.title()} {k} {pid} v{version}",
                      brand=f"Brand{rng.randint(1, 9)}", description=f"A {w} {k}, version {version}.",
                      price=round(rng.uniform(1, 500), 2), categories=["Home", k.title() + "s"],
                      material=w, color=rng.choice(["Red", "Blue"]), images=[f"https://example.invalid/{pid}/{version}.jpg"],
                      attributes={"version": str(version)})


class Writer(threading.Thread):
    """Streams writes for the ids `w<n>-*`, waiting while the service is down."""

    def __init__(self, n: int, address: str, ledger: Ledger, up: threading.Event,
                 stop: threading.Event, seed: int):
        super().__init__(name=f"writer-{n}", daemon=True)
        self.n, self.ledger, self.up, self.stop = n, ledger, up, stop
        self.rng = random.Random(seed * 1000 + n)
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = index_pb2_grpc.IndexStub(self.channel)
        self.next_id, self.version = 0, 0
        self.errors: list[str] = []

    def _new_ids(self, count: int) -> list[str]:
        ids = [f"w{self.n}-{self.next_id + i}" for i in range(count)]
        self.next_id += count
        return ids

    def _call(self, method, request, changes: dict) -> None:
        try:
            method(request, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT and not changes.get("_bad"):
                self.errors.append(f"unexpected INVALID_ARGUMENT: {exc.details()}")
            outcome = "rejected" if exc.code() == grpc.StatusCode.INVALID_ARGUMENT else "unknown"
        else:
            if changes.get("_bad"):
                self.errors.append("a batch with a bad product was acknowledged")
            outcome = "ok"
        changes.pop("_bad", None)
        self.ledger.record(changes, outcome)
        if outcome == "unknown":
            self.stop.wait(0.05)  # the service is going down or coming back: do not spin

    def run(self) -> None:
        prefix = f"w{self.n}-"
        while not self.stop.is_set():
            if not self.up.wait(0.5):
                continue
            roll = self.rng.random()
            self.version += 1
            if roll < 0.5:        # new products
                products = [_product(self.rng, pid, self.version)
                            for pid in self._new_ids(self.rng.randint(1, 3))]
                self._call(self.stub.UpsertProducts, pb.UpsertProductsRequest(products=products),
                           {p.id: expected_product(p) for p in products})
            elif roll < 0.7:      # new versions of acknowledged products
                products = [_product(self.rng, pid, self.version)
                            for pid in self.ledger.acked_ids(self.rng, prefix, 2)]
                if products:
                    self._call(self.stub.UpsertProducts,
                               pb.UpsertProductsRequest(products=products),
                               {p.id: expected_product(p) for p in products})
            elif roll < 0.93:     # deletes
                ids = self.ledger.acked_ids(self.rng, prefix, self.rng.randint(1, 2))
                if ids:
                    self._call(self.stub.DeleteProducts, pb.DeleteProductsRequest(product_ids=ids),
                               dict.fromkeys(ids))
            else:                 # a batch with a bad product: rejected whole
                good = _product(self.rng, self._new_ids(1)[0], self.version)
                bad = pb.Product(id=self._new_ids(1)[0], title="  ")
                self._call(self.stub.UpsertProducts, pb.UpsertProductsRequest(products=[good, bad]),
                           {good.id: expected_product(good), bad.id: None, "_bad": True})
        self.channel.close()


def _served(product: pb.Product) -> pb.Product:
    """GetProduct lists every attribute column of the catalog ("" where a product has none):
    compare only the attributes with a value."""
    for name in [k for k, v in product.attributes.items() if not v]:
        del product.attributes[name]
    return product


def verify(address: str, ledger: Ledger) -> list[str]:
    """The ids whose served state is not one the ledger allows (lost or wrong writes)."""
    wrong = []
    with grpc.insecure_channel(address) as channel:
        stub = index_pb2_grpc.IndexStub(channel)
        for pid, states in sorted(ledger.allowed.items()):
            try:
                served = _served(stub.GetProduct(pb.GetProductRequest(product_id=pid), timeout=10))
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                served = None
            if not any(served == s for s in states):
                wrong.append(pid)
    return wrong


def _start(port: int, args: list[str]) -> ServiceProcess:
    return ServiceProcess("index_service", ["--port", str(port), *args], port)


def _compactions(proc: ServiceProcess) -> int:
    return proc.output().count("compaction: compacted ")


def _check_clean(proc: ServiceProcess) -> list[str]:
    text = proc.output()
    return [f"index service log shows a traceback:\n{text[-3000:]}"] if "Traceback" in text else []


def run(*, embedder_address: str, catalog: Path, data_dir: Path, kills: int, seconds: float,
        seed: int = 1, writers: int = 2, compact_every_writes: int = 8,
        log=print) -> dict:
    """Kill and restart the index service `kills` times (or until `seconds` pass); verify."""
    rng = random.Random(seed)
    port = free_port()
    args = ["--embedder", embedder_address, "--catalog", str(catalog), "--data-dir", str(data_dir),
            "--compact-every-writes", str(compact_every_writes), "--grace-s", "2"]
    ledger, up, stop = Ledger(), threading.Event(), threading.Event()
    problems: list[str] = []
    proc = _start(port, args).wait_serving(300)
    up.set()
    threads = [Writer(n, proc.address, ledger, up, stop, seed) for n in range(writers)]
    for t in threads:
        t.start()
    started, survived, starts_killed, compactions = time.monotonic(), 0, 0, 0
    try:
        while survived < kills and time.monotonic() - started < seconds:
            stop.wait(rng.uniform(0.3, 2.0))           # writes (and compactions) in progress
            up.clear()
            proc.proc.send_signal(signal.SIGKILL)
            proc.proc.wait()
            problems += _check_clean(proc)
            compactions += _compactions(proc)
            survived += 1
            proc = _start(port, args)
            if rng.random() < 0.2:                     # sometimes kill it again while it starts
                time.sleep(rng.uniform(0.2, 1.5))
                proc.kill()
                starts_killed += 1
                proc = _start(port, args)
            proc.wait_serving(120)
            up.set()
            log(f"kill {survived}: restarted; {ledger.acknowledged} writes acknowledged so far")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=CALL_TIMEOUT_S + 5)
    elapsed = time.monotonic() - started
    lost = set(verify(proc.address, ledger))
    problems += _check_clean(proc)
    if proc.terminate() != 0:                          # clean stop: compacts the log
        problems.append(f"clean stop failed:\n{proc.output()[-3000:]}")
    compactions += _compactions(proc)
    proc = _start(port, args).wait_serving(120)
    lost |= set(verify(proc.address, ledger))
    problems += _check_clean(proc)
    proc.terminate()
    for t in threads:
        problems += t.errors
    return {"kills_survived": survived, "kills_during_start": starts_killed,
            "writes_acknowledged": ledger.acknowledged,
            "products_acknowledged": ledger.products_acknowledged,
            "compactions": compactions, "batches_rejected": ledger.rejected,
            "answers_lost_with_a_kill": ledger.unknown,
            "ids_checked": len(ledger.allowed), "writes_lost": len(lost),
            "lost_ids": sorted(lost)[:20],
            "problems": problems, "seconds": round(elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=300.0, help="stop killing after this")
    parser.add_argument("--catalog", default=str(ROOT / "data" / "products.csv"))
    parser.add_argument("--embedder", help="an embedder already running (default: start one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--writers", type=int, default=2)
    args = parser.parse_args()
    from bench.results import Row, publish
    from bench.services import embedder_address

    started = time.time()
    with embedder_address(args.embedder) as address, tempfile.TemporaryDirectory() as tmp:
        figures = run(embedder_address=address, catalog=Path(args.catalog),
                      data_dir=Path(tmp) / "data", kills=args.kills, seconds=args.seconds,
                      seed=args.seed, writers=args.writers)
    for key, value in figures.items():
        print(f"{key}: {value}")
    problems = figures["problems"]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    publish("crash_soak", [
        Row(goal=f"no acknowledged write lost over >= {args.kills} SIGKILLs",
            measured=f"{figures['writes_acknowledged']} writes acknowledged, "
                     f"{figures['kills_survived']} kills survived", ratio=f"{figures['writes_lost']} lost",
            met=figures["writes_lost"] == 0 and not problems
            and figures["kills_survived"] >= args.kills,
            limits="; ".join(problems)[:300])], figures, args, started)
    raise SystemExit(1 if figures["writes_lost"] or problems else 0)


if __name__ == "__main__":
    main()
