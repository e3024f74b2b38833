"""The Milvus collection that holds the catalog: its fields, indexes, and product <-> row.

One row per product, keyed by its id (primary key, no auto id), with the fields the RPCs return,
the filterable fields as scalar fields with indexes (price: STL_SORT, brand: Trie; categories:
an array filtered with ARRAY_CONTAINS_ANY), and the vector (inner product: the vectors are
L2-normalized, so the score is the cosine, as with FAISS). Where the server has BM25 (Milvus >=
2.5, milvus-lite 3.x) the product's search text also feeds a BM25 function into a sparse vector
(MODE_LEXICAL, MODE_HYBRID).

Milvus bounds a VARCHAR at 65,535 bytes and an array at 4,096 items: a product over them is
refused with its id (`RowError`), never cut. Only the BM25 input (the search text, derived and
never returned) is cut at 65,535 bytes.
"""
from __future__ import annotations

import json

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient

MAX_VARCHAR = 65_535
MAX_ID_BYTES = 4_096      # 1,024 characters (product_limits.MAX_ID_CHARS) of up to 4 bytes
MAX_LEVELS = 4_096
TEXT_FIELDS = ("title", "brand", "description", "category", "material", "color")
# What a product read back needs (the vector and the BM25 input stay on the server).
PRODUCT_FIELDS = ["id", *TEXT_FIELDS, "price", "categories", "extra"]
VECTOR, SPARSE, SEARCH_TEXT = "vector", "sparse", "search_text"


class RowError(ValueError):
    """A product that does not fit the collection's fields; the message names it."""


def collection_schema(dimension: int, *, bm25: bool):
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                        description="recsys catalog (index_service --store milvus)")
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
    for name in TEXT_FIELDS:
        schema.add_field(name, DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("price", DataType.DOUBLE)
    schema.add_field("categories", DataType.ARRAY, element_type=DataType.VARCHAR,
                     max_capacity=MAX_LEVELS, max_length=MAX_VARCHAR)
    schema.add_field("extra", DataType.JSON)  # images and attributes
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dimension)
    if bm25:
        schema.add_field(SEARCH_TEXT, DataType.VARCHAR, max_length=MAX_VARCHAR,
                         enable_analyzer=True)
        schema.add_field(SPARSE, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="search_text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=[SEARCH_TEXT],
                                     output_field_names=[SPARSE]))
    return schema


def index_params(client: MilvusClient, index_type: str, params: dict, *, bm25: bool,
                 inverted: bool):
    """The vector index (HNSW or FLAT, inner product) and the scalar indexes of the filters:
    INVERTED where the server has it (Milvus >= 2.4, milvus-lite), else STL_SORT and Trie."""
    ip = client.prepare_index_params()
    if index_type == "hnsw":
        ip.add_index(field_name=VECTOR, index_type="HNSW", metric_type="IP",
                     params={"M": params["m"], "efConstruction": params["ef_construction"]})
    else:
        ip.add_index(field_name=VECTOR, index_type="FLAT", metric_type="IP")
    ip.add_index(field_name="price", index_type="INVERTED" if inverted else "STL_SORT")
    ip.add_index(field_name="brand", index_type="INVERTED" if inverted else "Trie")
    if bm25:
        ip.add_index(field_name=SPARSE, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return ip


def _check_text(product_id: str, name: str, value: str) -> None:
    size = len(value.encode("utf-8"))
    if size > MAX_VARCHAR:
        raise RowError(f"product {product_id!r}: {name} is {size} bytes; a Milvus VARCHAR holds "
                       f"at most {MAX_VARCHAR}")


def to_row(product: dict, vector: np.ndarray, search_text: str | None) -> dict:
    """A product (recsys.v1.Product fields, price filled) and its vector -> a collection row."""
    pid = product["id"]
    if len(pid.encode("utf-8")) > MAX_ID_BYTES:
        raise RowError(f"product id {pid[:80]!r}...: over {MAX_ID_BYTES} bytes")
    levels = [str(level) for level in product.get("categories") or []]
    row = {"id": pid, "price": float(product["price"]), "categories": levels,
           "category": levels[-1] if levels else "", VECTOR: np.asarray(vector).tolist(),
           "extra": {"images": list(product.get("images") or []),
                     "attributes": _own_attributes(product.get("attributes"))}}
    for name in TEXT_FIELDS:
        if name != "category":
            row[name] = str(product.get(name) or "")
    if len(levels) > MAX_LEVELS:
        raise RowError(f"product {pid!r}: {len(levels)} category levels; at most {MAX_LEVELS}")
    for name, value in [(n, row[n]) for n in TEXT_FIELDS] + [("a category", c) for c in levels]:
        _check_text(pid, name, value)
    # The JSON's UTF-8 size: with json.dumps's default \uXXXX escapes a CJK character counted 6
    # bytes, not its 3, and valid products were refused.
    if len(json.dumps(row["extra"], ensure_ascii=False).encode("utf-8")) > MAX_VARCHAR:
        raise RowError(f"product {pid!r}: images and attributes over {MAX_VARCHAR} bytes")
    if search_text is not None:  # derived, never returned: the BM25 input is cut, not refused
        row[SEARCH_TEXT] = search_text.encode("utf-8")[:MAX_VARCHAR].decode("utf-8", "ignore")
    return row


def from_entity(entity: dict) -> dict:
    """A row read back -> recsys.v1.Product fields."""
    extra = entity.get("extra") or {}
    product = {name: entity.get(name) or "" for name in ("id", *TEXT_FIELDS)}
    product.update(price=float(entity.get("price") or 0.0),
                   categories=list(entity.get("categories") or []),
                   images=list(extra.get("images") or []),
                   attributes=_own_attributes(extra.get("attributes")))
    return product


def _own_attributes(attributes: dict | None) -> dict[str, str]:
    """A product's attributes with a value: an empty one is not stored or returned (proto3 maps:
    absent means empty), as the FAISS store returns them (Catalog.product)."""
    return {str(k): str(v) for k, v in (attributes or {}).items() if v not in ("", None)}
