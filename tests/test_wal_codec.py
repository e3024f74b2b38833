"""index_service.wal_codec: the upsert and delete payloads the write-ahead log carries round-trip
products and exact vectors, and a wrong payload is refused in words."""
from __future__ import annotations

import numpy as np
import pytest

from client.generated.recsys.v1 import index_pb2
from index_service.wal_codec import (WalFormatError, decode_delete, decode_upsert, encode_delete,
                                     encode_upsert)
from tests.test_wal import _fill, _replayed, log_path  # noqa: F401 - log_path: a fixture

pytestmark = pytest.mark.timeout(60)


# -- payload helpers ------------------------------------------------------------------------------

def _product(i, **extra):
    return index_pb2.Product(id=f"id-{i}", title=f"Chair {i} ü 椅子", brand="Acme",
                             categories=["Home", "Chairs"], category="Chairs",
                             images=["http://x/1.jpg"], attributes={"sku": str(i)}, **extra)


def test_upsert_payload_round_trips_products_and_exact_vectors():
    products = [_product(0, price=19.5), _product(1)]   # the second has no price: stays unset
    vectors = np.random.default_rng(0).standard_normal((2, 384)).astype(np.float32)
    decoded, decoded_vectors = decode_upsert(encode_upsert(products, vectors))
    assert decoded == products
    assert not decoded[1].HasField("price")
    assert decoded_vectors.dtype == np.float32 and decoded_vectors.flags.writeable
    np.testing.assert_array_equal(decoded_vectors, vectors)


def test_upsert_payload_survives_the_log(log_path):
    vectors = np.arange(12, dtype=np.float64).reshape(3, 4)   # converted to float32
    _fill(log_path, [encode_upsert([_product(i) for i in range(3)], vectors)])
    (_, op, payload), = _replayed(log_path)
    products, decoded = decode_upsert(payload)
    assert op == "upsert" and [p.id for p in products] == ["id-0", "id-1", "id-2"]
    np.testing.assert_array_equal(decoded, vectors.astype(np.float32))


def test_upsert_payload_of_no_products():
    products, vectors = decode_upsert(encode_upsert([], np.zeros((0, 384), np.float32)))
    assert products == [] and vectors.shape == (0, 384)


@pytest.mark.parametrize("shape", [(3, 4), (2,), (2, 4, 1)])
def test_upsert_needs_one_vector_row_per_product(shape):
    with pytest.raises(ValueError, match="one row per product"):
        encode_upsert([_product(0), _product(1)], np.zeros(shape, np.float32))


def test_delete_payload_round_trips_ids():
    ids = ["a", "", "ü 椅子", "x" * 10_000]
    assert decode_delete(encode_delete(ids)) == ids
    assert decode_delete(encode_delete([])) == []


@pytest.mark.parametrize("decode, payload", [
    (decode_upsert, b""), (decode_upsert, b"DEL1\x00\x00\x00\x00"),
    (decode_upsert, encode_upsert([_product(0)], np.zeros((1, 4)))[:-1]),
    (decode_upsert, encode_upsert([_product(0)], np.zeros((1, 4)))[:20]),
    (decode_delete, b"UPS1"), (decode_delete, encode_delete(["abc"])[:-1]),
    (decode_delete, encode_delete(["abc"]) + b"x")])
def test_decoding_a_wrong_payload_says_so(decode, payload):
    with pytest.raises(WalFormatError):
        decode(payload)
