"""`python -m embedder_service --port 50051 [--host H] [--model PATH] [--metrics-port P] ...`"""
import logging

from .config import EmbedderConfig
from .server import serve


def main(argv: list[str] | None = None) -> None:
    config = EmbedderConfig.from_args(argv)
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(config)


if __name__ == "__main__":
    main()
