"""A real Milvus standalone server (the `milvus` wheel's binary, from .venv-milvus), started on
free loopback ports for the tests and benchmarks, and stopped by its pid.

    server = MilvusServer(tmp_path / "milvus").start()     # ready when it returns (~10 s)
    uri = server.uri                                       # http://127.0.0.1:<port>
    server.kill(); server.start()                          # SIGKILL, then the same data back
    server.stop()                                          # SIGTERM, SIGKILL after 3 s

`make test` installs .venv-milvus (requirements-milvus-server.txt); scripts/milvus_prepare.py
writes the config and says how to run the binary, which is started here, so that its pid is
ours (the wheel's Python wrapper can leave the binary running when the wrapper stops).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MILVUS_PYTHON = ROOT / ".venv-milvus" / "bin" / "python"
BIN_DIR = ROOT / ".venv-milvus" / "milvus-bin"


def available() -> bool:
    return MILVUS_PYTHON.is_file()


class MilvusServer:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self._launch: dict | None = None

    def _prepare(self) -> dict:
        """The launch spec, made once per data dir (a restart keeps the same ports and data)."""
        spec_file = self.data_dir / "launch.json"
        if not spec_file.is_file():
            result = subprocess.run(
                [str(MILVUS_PYTHON), str(ROOT / "scripts" / "milvus_prepare.py"), "--data-dir",
                 str(self.data_dir / "server"), "--bin-dir", str(BIN_DIR)],
                capture_output=True, text=True, timeout=300, check=False)
            if result.returncode != 0:
                raise RuntimeError(f"milvus_prepare failed:\n{result.stderr}")
            spec_file.write_text(result.stdout)
        return json.loads(spec_file.read_text())

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self._prepare()['port']}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self, timeout: float = 120.0) -> "MilvusServer":
        spec = self._launch = self._prepare()
        log = open(self.data_dir / "milvus.log", "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(spec["cmd"], cwd=spec["cwd"], env={**os.environ, **spec["env"]},
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until /healthz says OK (Milvus's own readiness: every component up)."""
        url = f"http://127.0.0.1:{self._launch['health_port']}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if b"OK" in reply.read():
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"milvus not ready after {timeout} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        path = self.data_dir / "milvus.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is flushed or closed."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, SIGKILL after `grace` s. Short: an idle server stops at once, but 2.3.5 with a
        loaded collection never finished its graceful stop here (> 120 s), and whatever it
        holds is a test's, thrown away after."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
