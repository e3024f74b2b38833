"""recsys index service: a product catalog, its FAISS index, and the recsys.v1.Index gRPC API.

Layers (one job per module):
  transport  servicer.py (proto <-> core), server.py / __main__.py (process, health, signals)
  core       search.py (validation, ranking, pagination), filters.py (Filter -> row mask),
             snapshot.py (the immutable served state, swapped atomically)
  data       catalog.py (CSV -> columnar catalog), columns.py (compact string storage),
             vectors/ (FAISS backends), artifacts.py (atomic save/load), build.py (embedding)
  outside    embedder_client.py (the channel to the embedder, query-vector cache)
"""
