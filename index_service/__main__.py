"""`python -m index_service --port P --embedder HOST:P --catalog CSV --data-dir DIR [...]`"""
import logging
import sys

from .config import IndexConfig
from .server import serve


def main(argv: list[str] | None = None) -> int:
    config = IndexConfig.from_args(argv)
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
