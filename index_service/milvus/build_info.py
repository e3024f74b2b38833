"""What a catalog collection was built from, and whether its first fill finished: one JSON
record in a small companion collection `<collection>_build` (Milvus 2.3 does not keep custom
collection properties across restarts; rows it keeps).

    {"format": 1, "status": "ready" | "filling", "catalog_sha256": ..., "columns": {...},
     "model_name": ..., "dimension": 384, "median_price": ..., "owner": "host:pid",
     "heartbeat": <unix time>, "built_at": ..., "product_count": ...}

A replica that finds "ready" with its own catalog and model serves at once; another catalog or
model: it refuses to start. "filling" with a fresh heartbeat: another replica is filling it, so
this one waits; a stale heartbeat (the filler died): this one takes over.
"""
from __future__ import annotations

import json

from pymilvus import DataType, MilvusClient

FORMAT = 1
KEY = "build"


def companion(collection: str) -> str:
    return f"{collection}_build"


def ensure(client: MilvusClient, collection: str, timeout: float) -> None:
    name = companion(collection)
    if client.has_collection(name, timeout=timeout):
        return
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                        description=f"what {collection} was built from (recsys)")
    schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("value", DataType.VARCHAR, max_length=65_535)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus 2.3 loads only with a vector
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong", timeout=timeout)


def read(client: MilvusClient, collection: str, timeout: float) -> dict | None:
    rows = client.get(companion(collection), ids=[KEY], output_fields=["value"], timeout=timeout)
    return json.loads(rows[0]["value"]) if rows else None


def write(client: MilvusClient, collection: str, info: dict, timeout: float) -> None:
    client.upsert(companion(collection),
                  [{"key": KEY, "value": json.dumps({"format": FORMAT, **info}), "v": [0.0, 0.0]}],
                  timeout=timeout)


def drop(client: MilvusClient, collection: str, timeout: float) -> None:
    if client.has_collection(companion(collection), timeout=timeout):
        client.drop_collection(companion(collection), timeout=timeout)
