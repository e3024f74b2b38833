"""The payloads of catalog writes in the write-ahead log (wal.py): the only part of the log that
knows protos.

    payload = encode_upsert(products, vectors)   # recsys.v1.Product messages + float32 rows
    products, vectors = decode_upsert(payload)
    payload = encode_delete(ids); ids = decode_delete(payload)

An upsert stores the serialized products with their vectors, so a replay needs no embedder.

Format (integers little-endian u32):
    upsert   b"UPS1" | count | dimension | (len | Product bytes) * count | float32[count*dim]
    delete   b"DEL1" | count | (len | UTF-8 id) * count
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from client.generated.recsys.v1 import index_pb2


class WalFormatError(ValueError):
    """A payload given to a decode_* helper is not what the matching encode_* helper writes."""


_UPSERT_MAGIC, _DELETE_MAGIC = b"UPS1", b"DEL1"
_UPSERT_HEAD = struct.Struct("<4sII")     # magic, product count, vector dimension
_COUNT = struct.Struct("<4sI")            # magic, id count
_LEN = struct.Struct("<I")


def encode_upsert(products: Sequence[index_pb2.Product], vectors: np.ndarray) -> bytes:
    """One batch of upserts: the products (serialized protos) and their vectors (float32, one row
    each, in the same order)."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(products):
        raise ValueError(f"vectors must have one row per product: {len(products)} products, "
                         f"vectors of shape {vectors.shape}")
    parts = [_UPSERT_HEAD.pack(_UPSERT_MAGIC, len(products), vectors.shape[1])]
    for product in products:
        blob = product.SerializeToString()
        parts += [_LEN.pack(len(blob)), blob]
    parts.append(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    return b"".join(parts)


def decode_upsert(payload: bytes) -> tuple[list[index_pb2.Product], np.ndarray]:
    """The (products, vectors) that `encode_upsert` stored; vectors is float32 (n, dim)."""
    view = memoryview(payload)
    if len(view) < _UPSERT_HEAD.size:
        raise WalFormatError("upsert payload shorter than its header")
    magic, count, dim = _UPSERT_HEAD.unpack_from(view)
    if magic != _UPSERT_MAGIC:
        raise WalFormatError(f"not an upsert payload (magic {bytes(magic)!r})")
    offset, products = _UPSERT_HEAD.size, []
    for _ in range(count):
        blob, offset = _take_blob(view, offset, "upsert")
        product = index_pb2.Product()
        product.ParseFromString(blob)
        products.append(product)
    expected = count * dim * 4
    if len(view) - offset != expected:
        raise WalFormatError(f"upsert payload holds {len(view) - offset} vector bytes, expected "
                             f"{expected} ({count} x {dim} float32)")
    vectors = np.frombuffer(view[offset:], dtype="<f4").reshape(count, dim).astype(np.float32)
    return products, vectors


def encode_delete(product_ids: Sequence[str]) -> bytes:
    """One batch of deletes, by product id."""
    parts = [_COUNT.pack(_DELETE_MAGIC, len(product_ids))]
    for product_id in product_ids:
        blob = product_id.encode("utf-8")
        parts += [_LEN.pack(len(blob)), blob]
    return b"".join(parts)


def decode_delete(payload: bytes) -> list[str]:
    """The product ids that `encode_delete` stored."""
    view = memoryview(payload)
    if len(view) < _COUNT.size:
        raise WalFormatError("delete payload shorter than its header")
    magic, count = _COUNT.unpack_from(view)
    if magic != _DELETE_MAGIC:
        raise WalFormatError(f"not a delete payload (magic {bytes(magic)!r})")
    offset, ids = _COUNT.size, []
    for _ in range(count):
        blob, offset = _take_blob(view, offset, "delete")
        ids.append(bytes(blob).decode("utf-8"))
    if offset != len(view):
        raise WalFormatError(f"delete payload has {len(view) - offset} trailing bytes")
    return ids


def _take_blob(view: memoryview, offset: int, what: str) -> tuple[bytes, int]:
    if offset + _LEN.size > len(view):
        raise WalFormatError(f"{what} payload cut short at byte {offset}")
    (length,) = _LEN.unpack_from(view, offset)
    start, end = offset + _LEN.size, offset + _LEN.size + length
    if end > len(view):
        raise WalFormatError(f"{what} payload cut short at byte {offset}")
    return bytes(view[start:end]), end
