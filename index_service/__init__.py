"""recsys index service: a product catalog, its FAISS index, and the recsys.v1.Index gRPC API.

Layers (one job per module):
  transport  servicer.py (proto <-> core), server.py / __main__.py (process, health, signals),
             config.py (IndexConfig: flags and INDEX_* environment)
  core       search.py (validation, query vectors, ranking, pagination), product_writes.py
             (UpsertProducts / DeleteProducts: validation, embedding), product_limits.py (what
             one product may be, from a write or a catalog file), filters.py (Filter ->
             FilterSpec -> row mask), fusion.py (hybrid: RRF or weighted fusion),
             search_limits.py (a page's limits: the offset, Milvus's hits per search)
  stores     store.py (the interface the core calls), faiss_store.py (the embedded store: the
             modules below), milvus/ (the Milvus store: its own package map)
  faiss      snapshot.py (the immutable served state, swapped atomically), lexical.py (TF-IDF
             search), writes.py (the FAISS store's writes), wal.py (the write-ahead log),
             wal_format.py (its file format and crash recovery), wal_codec.py (its payloads),
             compaction.py (folds the log into fresh artifacts), compaction_schedule.py (when
             it is due), catalog_updates.py (catalogs from upserted products), row_maps.py
             (earlier builds' rows in the build served now: page tokens across compactions)
  data       catalog.py (the column store), catalog_reader.py (a catalog file -> Catalog, the
             app's recipe), catalog_files/ (CSV with its delimiter, JSON Lines, Parquet -> one
             table of strings), columns.py (compact string storage), vectors/ (FAISS backends),
             artifacts.py (the build directory: names, atomic save/load), durable_io.py (fsync)
  start-up   catalog_source.py (what both stores start from: the catalog file, the embedder's
             model, the vectors), startup_plan.py (the pure decision: load, reindex, re-embed
             or build),
             startup.py (carries it out, replays the log), build.py (embedding, import, index)
  outside    embedder_client.py (the channel to the embedder, query-vector cache),
             embedder_diagnosis.py (why the embedder cannot be reached, per address)
"""
