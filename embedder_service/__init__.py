"""recsys.v1.Embedder: a gRPC embedding server with dynamic batching.

Layers (as in text-embeddings-inference): transport (servicer.py, server.py), core (batcher.py,
validation.py), backend (backend.py: the model behind a tiny interface). config.py holds settings.
"""
