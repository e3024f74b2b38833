"""`python -m embedder_service --port 50051 [--host H] [--model PATH] [--metrics-port P] ...`"""
import logging
import os

from .config import EmbedderConfig
from .server import serve


def main(argv: list[str] | None = None) -> None:
    config = EmbedderConfig.from_args(argv)
    if config.omp_wait_policy:  # before torch loads OpenMP
        os.environ.setdefault("OMP_WAIT_POLICY", config.omp_wait_policy.upper())
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(config)


if __name__ == "__main__":
    main()
