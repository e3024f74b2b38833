"""`python -m embedder_service.prepare_cache [--model PATH] [--cache-dir DIR]`: fill the OpenVINO
model cache, then exit.

For image builds and init containers: the embedder's first start then finds the converted model
and its tokenizer in the cache and loads neither torch nor sentence-transformers (~1.5 s to
SERVING instead of ~12 s). docker/Dockerfile runs it, so a fresh `embedder-cache` volume starts
with the image's entry. Takes the embedder's own flags and EMBEDDER_* variables (only --model,
--cache-dir and --log-level matter here). Exit 0: the entry is ready (a model whose tokenizer
cannot be kept says so, and its starts load torch); 2: nothing to prepare (--backend torch,
--cache-dir off) or bad flags; 1: the model could not be converted or cached.
"""
from __future__ import annotations

import logging
import sys

from .config import EmbedderConfig


def main(argv: list[str] | None = None) -> int:
    config = EmbedderConfig.from_args(argv)
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.backend != "openvino":
        print(f"prepare_cache: --backend {config.backend} keeps no converted model: nothing to "
              "prepare", file=sys.stderr)
        return 2
    from . import ov_cache, standalone_tokenizer

    if ov_cache.resolve_cache_dir(config.cache_dir) is None:
        print("prepare_cache: --cache-dir off: there is no cache to prepare", file=sys.stderr)
        return 2
    from .openvino_backend import OpenVINOBackend

    backend = OpenVINOBackend(config.model, precision="fp32", cache_dir=config.cache_dir)
    entry = backend.cache_entry
    if not (entry / ov_cache.MODEL_XML).is_file():
        print(f"prepare_cache: could not write {entry} (see the log above)", file=sys.stderr)
        return 1
    if standalone_tokenizer.load(entry) is None:
        print(f"prepared {entry}: the converted model only; this model's tokenizer cannot be kept "
              "without transformers, so each start loads torch")
    else:
        print(f"prepared {entry}: the converted model and its tokenizer (a start loads no torch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
