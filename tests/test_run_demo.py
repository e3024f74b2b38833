"""`make run` (scripts/run_demo.py) as a user runs it: examples, CLI hints, Ctrl-C, nothing left.

The first test builds the index into a tmp data dir; the second reuses it (the load path) and
checks that a dying service is reported and ends the demo with a non-zero exit code.
"""
import json
import signal
import subprocess
import sys
import threading

import psutil
import pytest

from scripts.run_demo import EXAMPLE_QUERIES
from tests.procs import ROOT, free_port

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]
READY_LINE = "press Ctrl-C to stop"


class Demo:
    """The demo as a subprocess; its output collected line by line, an event once it serves."""

    def __init__(self, data_dir):
        self.index_port, self.embedder_port = free_port(), free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.run_demo", "--data-dir", str(data_dir),
             "--embedder-port", str(self.embedder_port), "--index-port", str(self.index_port)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        self.serving = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if READY_LINE in line:
                self.serving.set()
        self.serving.set()  # the demo ended: wake the waiter

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_serving(self, timeout=600):
        assert self.serving.wait(timeout), f"demo not serving after {timeout}s:\n{self.output}"
        assert self.proc.poll() is None, f"demo exited {self.proc.returncode}:\n{self.output}"

    def services(self) -> list[psutil.Process]:
        children = psutil.Process(self.proc.pid).children(recursive=True)
        assert sorted(next(a for a in c.cmdline() if a.endswith("_service")) for c in children) \
            == ["embedder_service", "index_service"], [c.cmdline() for c in children]
        return children

    def finish(self, timeout=120) -> int:
        code = self.proc.wait(timeout)
        self.reader.join(10)
        return code

    def kill(self):
        if self.proc.poll() is None:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                child.kill()
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demo") / "demo-data"


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_demo_answers_the_examples_and_stops_both_services_on_ctrl_c(data_dir):
    demo = Demo(data_dir)
    try:
        demo.wait_serving()
        services = demo.services()
        out = demo.output
        # The build says what it does (a progress bar too where the output is a terminal).
        assert "first run: building the index" in out and "products through the embedder" in out
        for query in EXAMPLE_QUERIES:
            assert f"5 hits for {query!r}" in out, out
        assert "5 hits for products like" in out
        command = f"-m client --index 127.0.0.1:{demo.index_port} search"
        assert command in out

        done = subprocess.run([sys.executable, "-m", "client", "--index",
                               f"127.0.0.1:{demo.index_port}", "search",
                               "small folding computer desk", "-k", "5", "--json"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and len(json.loads(done.stdout)["hits"]) == 5, done.stderr

        demo.proc.send_signal(signal.SIGINT)
        assert demo.finish() == 0, demo.output
        assert all(_gone(s) for s in services)
        assert "index service stopped (exit code 0)" in demo.output
        assert "embedder stopped (exit code 0)" in demo.output
        assert "Traceback" not in demo.output
    finally:
        demo.kill()


def test_demo_reports_a_dead_service_and_exits_non_zero(data_dir):
    demo = Demo(data_dir)  # the index artifacts exist now: loaded, not built
    try:
        demo.wait_serving()
        assert "first run" not in demo.output
        services = demo.services()
        embedder = next(s for s in services if "embedder_service" in s.cmdline())
        embedder.kill()
        assert demo.finish() == 1, demo.output
        assert "the embedder exited unexpectedly" in demo.output
        assert all(_gone(s) for s in services)
    finally:
        demo.kill()
