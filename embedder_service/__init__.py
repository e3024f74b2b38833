"""recsys.v1.Embedder: a gRPC embedding server with dynamic batching.

Layers (as in text-embeddings-inference): transport (servicer.py: RPCs; server.py / __main__.py:
process, health, signals), core (batcher.py: the queue and dynamic batching; validation.py:
limits), backend (backend.py: the model behind a tiny interface, torch; openvino_backend.py: the
same model compiled by OpenVINO; ov_cache.py: its converted models, kept between starts;
standalone_tokenizer.py: the tokenizer kept with them, so that a start from the cache needs no torch;
prepare_cache.py: `python -m embedder_service.prepare_cache` fills that cache and exits (image builds);
precision.py: fp32 or bf16, from the CPU's features). config.py holds the settings
(config_help.py: their --help lines).
"""
