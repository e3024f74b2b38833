"""`make run`: both services on localhost with data/products.csv, example answers, then serve.

    python -m scripts.run_demo [--catalog CSV] [--data-dir DIR] [--embedder-port P] [--index-port P]

Starts the embedder and the index service as child processes (their output, the index build's
progress bar included, goes to this terminal), waits until both report SERVING, prints the answers
to a few example queries and one similar-products example, tells how to query with the CLI, and
serves until Ctrl-C (SIGINT) or SIGTERM. Then it stops both services (SIGTERM, then waits) and
exits 0, leaving nothing running. If a service dies it says so, stops the other, and exits 1.

The first run builds the index into the data dir (default var/demo-data); later runs load it.
Ports: 50051 (embedder) and 50052 (index) when free, else free ones (printed).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from client import RecsysClient, RecsysError, render
from client.errors import DeadlineExceededError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_QUERIES = ("cozy wooden chair for study table", "small folding computer desk",
                   "blue metal cafe table", "upholstered lounge arm chair")
STOP_GRACE_S = 30.0


def _server_environment() -> dict[str, str]:
    """This environment less the client's token (RECSYS_TOKEN_FILE / RECSYS_TOKEN, for the CLI):
    the demo's services run without tokens, and a server refuses to start where those are set."""
    return {k: v for k, v in os.environ.items() if k not in ("RECSYS_TOKEN_FILE", "RECSYS_TOKEN")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m scripts.run_demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default=env.get("RECSYS_DEMO_CATALOG", "data/products.csv"),
                        help="catalog CSV (env RECSYS_DEMO_CATALOG, default data/products.csv)")
    parser.add_argument("--data-dir", default=env.get("RECSYS_DEMO_DATA_DIR", "var/demo-data"),
                        help="index artifacts (env RECSYS_DEMO_DATA_DIR, default var/demo-data)")
    parser.add_argument("--embedder-port", type=int,
                        default=int(env.get("RECSYS_DEMO_EMBEDDER_PORT", "50051")),
                        help="(env RECSYS_DEMO_EMBEDDER_PORT; a free one if taken)")
    parser.add_argument("--index-port", type=int,
                        default=int(env.get("RECSYS_DEMO_INDEX_PORT", "50052")),
                        help="(env RECSYS_DEMO_INDEX_PORT; a free one if taken)")
    parser.add_argument("--startup-timeout", type=float, default=1800.0,
                        help="seconds to wait for both services (first run: the index build)")
    parser.add_argument("-k", type=int, default=5, help="hits per example query")
    return parser.parse_args(argv)


def port_or_free(preferred: int, taken: tuple[int, ...] = ()) -> int:
    """`preferred` when it can be bound on loopback now and is not in `taken` (the other
    service's port, not bound yet either), else a free port not in `taken`."""
    for port in (preferred, *[0] * 20):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            if s.getsockname()[1] not in taken:
                return s.getsockname()[1]
    raise SystemExit("no free port on 127.0.0.1")


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the demo itself dies (even by SIGKILL), so nothing lingers."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Service:
    """One service as a child process in its own process group (a terminal's Ctrl-C reaches the
    demo only; the demo stops the services in order)."""

    def __init__(self, name: str, module: str, args: list[str], address: str,
                 on_exit: threading.Event):
        self.name, self.address = name, address
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=ROOT,
            env={**_server_environment(), "PYTHONUNBUFFERED": "1"}, process_group=0,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        self.stopping = False
        # Wakes the demo the moment the process exits: no polling.
        threading.Thread(target=lambda: (self.proc.wait(), on_exit.set()), daemon=True,
                         name=f"wait-{name}").start()

    @property
    def exited(self) -> bool:
        return self.proc.poll() is not None

    def stop(self) -> int:
        """SIGTERM, wait for the graceful stop (SIGKILL after STOP_GRACE_S); the exit code."""
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                print(f"{self.name} did not stop within {STOP_GRACE_S:g}s: killing it", flush=True)
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Demo:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.wake = threading.Event()        # a signal arrived or a service exited
        self.stop_requested = False
        self.services: list[Service] = []

    def _on_signal(self, signum, _frame) -> None:
        self.stop_requested = True
        self.wake.set()

    def _dead(self) -> Service | None:
        return next((s for s in self.services if s.exited and not s.stopping), None)

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        args = self.args
        embedder_port = port_or_free(args.embedder_port)
        index_port = port_or_free(args.index_port, taken=(embedder_port,))
        embedder, index = f"127.0.0.1:{embedder_port}", f"127.0.0.1:{index_port}"
        catalog, data_dir = Path(args.catalog).resolve(), Path(args.data_dir).resolve()
        if not catalog.is_file():
            print(f"run_demo: error: no catalog file {catalog} (--catalog)", file=sys.stderr)
            return 1
        data_dir.mkdir(parents=True, exist_ok=True)
        print(f"starting the embedder on {embedder} and the index service on {index}\n"
              f"  catalog {catalog}, index artifacts in {data_dir}"
              f"{'' if any(data_dir.iterdir()) else ' (first run: building the index)'}",
              flush=True)
        try:
            self.services = [
                Service("embedder", "embedder_service",
                        ["--host", "127.0.0.1", "--port", str(embedder_port)], embedder, self.wake),
                Service("index service", "index_service",
                        ["--host", "127.0.0.1", "--port", str(index_port), "--embedder", embedder,
                         "--catalog", str(catalog), "--data-dir", str(data_dir)],
                        index, self.wake),
            ]
            with RecsysClient(index=index, embedder=embedder, timeout=30.0) as client:
                if not self._wait_ready(client):
                    return self._finish()
                example_id = self._examples(client)
            print(usage(index, embedder, example_id), flush=True)
            while not self.stop_requested and self._dead() is None:
                self.wake.wait()
                self.wake.clear()
            return self._finish()
        finally:
            for service in reversed(self.services):  # also on an unexpected error
                service.stop()

    def _wait_ready(self, client: RecsysClient) -> bool:
        deadline = time.monotonic() + self.args.startup_timeout
        while not self.stop_requested and self._dead() is None:
            if time.monotonic() > deadline:
                print(f"the services are not ready after {self.args.startup_timeout:g}s",
                      flush=True)
                return False
            try:
                client.wait_ready(timeout=1.0, index=True, embedder=True)
                return True
            except DeadlineExceededError:
                continue
        return False

    def _examples(self, client: RecsysClient) -> str:
        """Prints the example answers; returns the id used for the similar-products example."""
        stats = client.stats()
        print(f"\nready: {stats.product_count} products, {stats.dimension}-d {stats.model_name} "
              f"vectors, {stats.index_type} index\n", flush=True)
        first_hit = None
        for query in EXAMPLE_QUERIES:
            result = client.search(query, k=self.args.k)
            first_hit = first_hit or (result.hits[0] if result.hits else None)
            print(render.search_text(result, repr(query)) + "\n", flush=True)
        if first_hit is None:
            return "PRODUCT_ID"
        product = first_hit.product
        result = client.similar(product.id, k=self.args.k)
        print(render.search_text(result, f"products like {product.id} ({product.title!r})")
              + "\n", flush=True)
        return product.id

    def _finish(self) -> int:
        dead = self._dead()
        if dead is not None:
            print(f"\nthe {dead.name} exited unexpectedly with code {dead.proc.returncode} "
                  f"(its output is above): stopping", file=sys.stderr, flush=True)
        else:
            print("\nstopping the services...", flush=True)
        for service in reversed(self.services):
            code = service.stop()
            if dead is None:
                print(f"  {service.name} stopped (exit code {code})", flush=True)
        return 1 if dead is not None else 0


def usage(index: str, embedder: str, product_id: str) -> str:
    py = ".venv/bin/python" if (ROOT / ".venv").exists() else "python"
    cli = f"{py} -m client --index {index}"
    return "\n".join([
        "query it from another terminal with the CLI:",
        f"  {cli} search \"small folding computer desk\" -k 5",
        f"  {cli} search \"blue metal cafe table\" -k 5 --max-price 300 --json",
        f"  {cli} search \"reading lamp\" --mode hybrid --category \"Lamps & Shades\"",
        f"  {cli} similar {product_id} -k 5",
        f"  {cli} get {product_id}",
        f"  {cli} stats",
        f"  {py} -m client --embedder {embedder} embed \"a text to embed\"",
        f"or set RECSYS_INDEX={index} RECSYS_EMBEDDER={embedder} and run `recsys search ...`",
        "serving: press Ctrl-C to stop both services",
    ])


def main(argv: list[str] | None = None) -> int:
    try:
        return Demo(parse_args(argv)).run()
    except RecsysError as exc:
        print(f"run_demo: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
