"""docker-compose.yml's world on this machine, for tests/test_compose_env.py (helper, no tests).
Translation: container-side names -> this machine's (each container port a free loopback port,
service host names and 0.0.0.0 127.0.0.1, mounts local directories, /run/secrets/NAME the files
`make secrets` writes, `python` this interpreter); compose_world: a clean environment and the
secrets, for one test; prepare_cache_as_the_image_does: the image's model-cache step."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.procs import ROOT, free_port

DOCKERFILE = ROOT / "docker" / "Dockerfile"
PREPARE_CACHE = ["python", "-m", "embedder_service.prepare_cache"]  # the image's RUN step


class Translation:
    """Container-side names -> this machine's, for one compose file."""

    def __init__(self, compose: dict, volume_root: Path, secrets_dir: Path):
        self.ports: dict[tuple[str, str], int] = {}
        self.paths: dict[str, Path] = {}
        for name, service in compose["services"].items():
            for secret in service.get("secrets", []):  # mounted at /run/secrets/TARGET
                source = secret if isinstance(secret, str) else secret["source"]
                target = source if isinstance(secret, str) else secret.get("target", source)
                local = Path(compose["secrets"][source]["file"])
                assert local.parent == Path("secrets"), local  # ./secrets/NAME, as made by the script
                self.paths[f"/run/secrets/{target}"] = secrets_dir / local.name
            exposed = [str(p) for p in service.get("expose", [])]
            exposed += [str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])]
            for port in exposed:
                self.ports.setdefault((name, port), free_port())
            for volume in service.get("volumes", []):
                source, target = volume.split(":")[:2]
                self.paths[target] = ((ROOT / source).resolve() if source.startswith((".", "/"))
                                      else volume_root / source)
        self.hosts = set(compose["services"]) | {"127.0.0.1", "localhost", "0.0.0.0"}

    def value(self, service: str, value: str) -> str:
        def address(match):
            host, port = match.group(1), match.group(2)
            owner = service if host in ("127.0.0.1", "localhost", "0.0.0.0") else host
            return f"127.0.0.1:{self.ports[(owner, port)]}"

        if (service, value) in self.ports:  # e.g. EMBEDDER_PORT: "50051"
            return str(self.ports[(service, value)])
        if value == "0.0.0.0":
            return "127.0.0.1"
        hosts = "|".join(map(re.escape, sorted(self.hosts)))
        value = re.sub(rf"\b({hosts}):(\d+)\b", address, value)
        for target, local in self.paths.items():
            if value == target or value.startswith(target + "/"):
                return str(local) + value[len(target):]
        return value

    def command(self, service: str, argv: list[str]) -> list[str]:
        argv = [self.value(service, a) for a in argv]
        return [sys.executable if a == "python" else a for a in argv]


def compose_world(compose, tmp_path, monkeypatch) -> tuple[Translation, Path]:
    """Nothing but the compose file configures the services: no EMBEDDER_/INDEX_/RECSYS_
    variables of ours leak in; the secrets are made as `make secrets` makes them (into a tmp dir)."""
    for key in list(os.environ):
        if key.startswith(("EMBEDDER_", "INDEX_", "RECSYS_")):
            monkeypatch.delenv(key)
    secrets_dir = tmp_path / "secrets"
    made = subprocess.run([sys.executable, "-m", "scripts.make_secrets", "--dir", str(secrets_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    return Translation(compose, tmp_path / "volumes", secrets_dir), secrets_dir


def healthcheck(translation, name, service) -> subprocess.CompletedProcess:
    argv = translation.command(name, service["healthcheck"]["test"][1:])  # after "CMD"
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)


def prepare_cache_as_the_image_does(translation, env: dict[str, str]) -> None:
    """The Dockerfile's prepare step, with the compose embedder's cache directory (the image
    bakes the same path in: tests/test_dockerfile.py)."""
    done = subprocess.run(translation.command("embedder", PREPARE_CACHE), cwd=ROOT, timeout=300,
                          env={**os.environ, "EMBEDDER_CACHE_DIR": env["EMBEDDER_CACHE_DIR"]},
                          capture_output=True, text=True)
    assert done.returncode == 0 and "a start loads no torch" in done.stdout, done.stderr[-2000:]
