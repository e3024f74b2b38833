"""recsys.v1.Embedder: a gRPC embedding server with dynamic batching.

Layers (as in text-embeddings-inference): transport (servicer.py: RPCs; server.py / __main__.py:
process, health, signals), core (batcher.py: the queue and dynamic batching; validation.py:
limits), backend (backend.py: the model behind a tiny interface). config.py holds the settings.
"""
