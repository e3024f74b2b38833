"""The Milvus store (`--store milvus`): the catalog, its vectors and its text in one Milvus
collection, so that any number of index-service replicas serve it as stateless fronts.

Modules: schema.py (the collection's fields and indexes; product <-> row), expressions.py
(filters -> Milvus expressions), errors.py (pymilvus failures -> our statuses, deadlines),
store.py (MilvusStore / MilvusView: the store interface of store.py), build_info.py (what the
collection was built from, kept in a small companion collection, and the filler's claim on it),
ingest.py (the first start: the collection created, the catalog file embedded and written under
the fill's lease), startup.py (connect, check or create, ingest, serve), watch.py (health
follows Milvus while serving: its load state and one real search).
"""
