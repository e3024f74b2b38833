"""`python -m embedder_service --port 50051 [--host H] [--model PATH] [--metrics-port P] ...`"""
import logging
import os
from typing import MutableMapping

from .config import EmbedderConfig
from .server import serve


def openmp_environment(config: EmbedderConfig, environ: MutableMapping[str, str]) -> None:
    """OpenMP settings for torch's threads, read once when torch loads OpenMP (so: before any
    import of torch). A variable already in the environment wins over the config."""
    if config.omp_wait_policy:
        environ.setdefault("OMP_WAIT_POLICY", config.omp_wait_policy.upper())
    if config.omp_spin_count >= 0:  # explicit, so it wins over the policy's own spin count
        environ.setdefault("GOMP_SPINCOUNT", str(config.omp_spin_count))


def main(argv: list[str] | None = None) -> None:
    config = EmbedderConfig.from_args(argv)
    openmp_environment(config, os.environ)
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(config)


if __name__ == "__main__":
    main()
