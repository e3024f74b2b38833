"""Unit tests of the client's pure parts: message <-> dataclass conversion, request building,
status -> exception mapping, and the retry service config. The behaviour against real services is
in test_client.py."""
import json
import math

import grpc
import pytest

from client import convert, errors
from client.channels import RetryPolicy
from client.generated.recsys.v1 import embedder_pb2, index_pb2
from client.types import HybridParams, Product


def _product_message(**overrides) -> index_pb2.Product:
    fields = dict(id="p1", title="Oak desk", brand="Oakhaven", description="A desk.",
                  categories=["Home", "Furniture", "Desks"], category="Desks", material="Oak",
                  color="Brown", images=["http://x/1.jpg", "http://x/2.jpg"],
                  attributes={"country_of_origin": "Vietnam"})
    fields.update(overrides)
    return index_pb2.Product(**fields)


def test_product_round_trip_keeps_every_field_and_an_unset_price():
    message = _product_message(price=149.5)
    product = convert.product_from_proto(message)
    assert product == Product(id="p1", title="Oak desk", brand="Oakhaven", description="A desk.",
                              price=149.5, categories=("Home", "Furniture", "Desks"),
                              category="Desks", material="Oak", color="Brown",
                              images=("http://x/1.jpg", "http://x/2.jpg"),
                              attributes={"country_of_origin": "Vietnam"})
    assert convert.product_to_proto(product) == message

    unpriced = convert.product_from_proto(_product_message())
    assert unpriced.price is None
    assert not convert.product_to_proto(unpriced).HasField("price")
    # A zero price is a price, not a missing one.
    assert convert.product_from_proto(_product_message(price=0.0)).price == 0.0


def test_products_are_immutable_and_hashable_without_attributes():
    product = convert.product_from_proto(_product_message())
    with pytest.raises(AttributeError):
        product.title = "x"
    assert hash(product) == hash(convert.product_from_proto(_product_message()))


def test_search_response_becomes_hits_with_timing():
    response = index_pb2.SearchResponse(
        hits=[index_pb2.Hit(product=_product_message(id="a"), score=0.75, rank=3),
              index_pb2.Hit(product=_product_message(id="b"), score=0.5, rank=4)],
        timing=index_pb2.SearchTiming(embed_us=1200, search_us=300, total_us=1600),
        query_vector_cached=True)
    result = convert.search_result_from_proto(response)
    assert result.ids == ["a", "b"] and len(result) == 2
    assert [(h.rank, h.score) for h in result] == [(3, 0.75), (4, 0.5)]
    assert result.timing.total_us == 1600 and result.query_vector_cached


def test_stats_model_info_embed_page_and_write_results():
    stats = convert.stats_from_proto(index_pb2.Stats(product_count=7, dimension=384,
                                                     model_name="m", index_type="flat", max_k=50,
                                                     catalog_format="csv", csv_delimiter=";",
                                                     hybrid_fusion="weighted", hybrid_alpha=0.3,
                                                     hybrid_candidates=200))
    assert (stats.product_count, stats.dimension, stats.index_type, stats.max_k) == (
        7, 384, "flat", 50)
    assert (stats.catalog_format, stats.csv_delimiter) == ("csv", ";")
    assert (stats.hybrid_fusion, stats.hybrid_alpha, stats.hybrid_candidates) == ("weighted", 0.3, 200)
    info = convert.model_info_from_proto(embedder_pb2.ModelInfo(
        model_name="m", dimension=384, max_seq_length=256, normalized=True,
        max_texts_per_request=1024, backend="openvino", precision="bf16"))
    assert info.normalized and info.max_texts_per_request == 1024
    assert (info.backend, info.precision) == ("openvino", "bf16")
    embedded = convert.embed_result_from_proto(embedder_pb2.EmbedResponse(
        embeddings=[embedder_pb2.Embedding(values=[0.5, -0.5], token_count=4, truncated=True)],
        model_name="m", total_tokens=4, timing=embedder_pb2.Timing(total_us=10)))
    assert embedded.vectors == [(0.5, -0.5)] and embedded.embeddings[0].truncated
    page = convert.page_from_proto(index_pb2.ListProductsResponse(
        products=[_product_message()], next_page_token="t", total_count=9))
    assert page.products[0].id == "p1" and page.next_page_token == "t" and page.total_count == 9
    deleted = convert.delete_result_from_proto(index_pb2.DeleteProductsResponse(
        deleted=1, not_found=["zz"], product_count=6, sequence=3))
    assert deleted.not_found == ("zz",) and deleted.sequence == 3


def test_filter_takes_one_or_many_values_and_leaves_unset_prices_unset():
    f = convert.filter_to_proto(category="Desks", categories=["Chairs"], brand="Oakhaven")
    assert list(f.categories) == ["Chairs", "Desks"] and list(f.brands) == ["Oakhaven"]
    assert not f.HasField("min_price") and not f.HasField("max_price")
    f = convert.filter_to_proto(min_price=0, max_price=10.5)
    assert f.HasField("min_price") and f.min_price == 0 and f.max_price == 10.5


@pytest.mark.parametrize("bad", [dict(categories="Desks"), dict(min_price=math.nan),
                                 dict(max_price=math.inf)])
def test_filter_rejects_what_the_server_would_misread(bad):
    with pytest.raises(errors.InvalidArgumentError):
        convert.filter_to_proto(**bad)


def test_modes_and_hybrid_params():
    assert convert.mode_to_proto("semantic") == index_pb2.MODE_SEMANTIC
    assert convert.mode_to_proto("HYBRID") == index_pb2.MODE_HYBRID
    assert convert.mode_to_proto(index_pb2.MODE_LEXICAL) == index_pb2.MODE_LEXICAL
    with pytest.raises(errors.InvalidArgumentError, match="semantic, lexical, hybrid"):
        convert.mode_to_proto("fuzzy")
    h = convert.hybrid_to_proto(HybridParams(rrf_k=10))
    assert h.rrf_k == 10 and not h.HasField("semantic_weight")
    assert h.fusion == index_pb2.FUSION_UNSPECIFIED and not h.HasField("alpha")
    assert not h.HasField("candidates")
    assert convert.hybrid_to_proto(None) is None
    h = convert.hybrid_to_proto(HybridParams(fusion="Weighted", alpha=0.0, candidates=50))
    assert (h.fusion, h.alpha, h.candidates) == (index_pb2.FUSION_WEIGHTED, 0.0, 50)
    assert h.HasField("alpha")  # 0 is a value, not "unset"
    assert convert.hybrid_to_proto(HybridParams(fusion="rrf")).fusion == index_pb2.FUSION_RRF
    assert convert.fusion_to_proto(index_pb2.FUSION_WEIGHTED) == index_pb2.FUSION_WEIGHTED
    with pytest.raises(errors.InvalidArgumentError, match="rrf, weighted"):
        convert.hybrid_to_proto(HybridParams(fusion="linear"))


class _RpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


@pytest.mark.parametrize("code, cls", [
    (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgumentError),
    (grpc.StatusCode.NOT_FOUND, errors.NotFoundError),
    (grpc.StatusCode.UNAVAILABLE, errors.UnavailableError),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhaustedError),
    (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceededError),
    (grpc.StatusCode.UNAUTHENTICATED, errors.UnauthenticatedError),
    (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDeniedError),
    (grpc.StatusCode.INTERNAL, errors.ServerError),
    (grpc.StatusCode.UNKNOWN, errors.ServerError),
])
def test_each_status_has_its_exception_naming_service_address_and_what_to_do(code, cls):
    exc = errors.from_rpc_error(_RpcError(code, "server says no"), service="index",
                                target="10.0.0.1:50052", method="Search")
    assert type(exc) is cls and isinstance(exc, errors.RecsysError)
    assert exc.code == code and exc.target == "10.0.0.1:50052"
    assert "index service at 10.0.0.1:50052" in str(exc)
    assert cls.hint.format(service="index") in str(exc)
    if code != grpc.StatusCode.DEADLINE_EXCEEDED:
        assert "server says no" in str(exc) and exc.details == "server says no"


def test_connection_failures_say_to_start_the_service_or_fix_the_address():
    refused = _RpcError(grpc.StatusCode.UNAVAILABLE,
                        "failed to connect to all addresses; last error: UNKNOWN: "
                        "ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused")
    exc = errors.from_rpc_error(refused, service="embedder", target="127.0.0.1:1", method="Embed")
    assert isinstance(exc, errors.UnavailableError)
    assert "cannot reach the embedder service at 127.0.0.1:1" in str(exc)
    assert "Connection refused" in str(exc) and "RECSYS_EMBEDDER" in str(exc)
    # A deadline that passed while the channel could not connect is unreachability too.
    late = errors.from_rpc_error(_RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
                                 service="index", target="h:1", method="Search", unreachable=True)
    assert isinstance(late, errors.UnavailableError) and "cannot reach" in str(late)


def test_a_deadline_the_server_reports_keeps_its_reason():
    said = ("the embedder at 10.0.0.2:50051 did not answer in time (query): the call's deadline "
            "left it 9 ms; allow the call more time")
    exc = errors.from_rpc_error(_RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, said),
                                service="index", target="h:1", method="Search")
    assert isinstance(exc, errors.DeadlineExceededError) and f"({said})" in str(exc)
    own = errors.from_rpc_error(_RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
                                service="index", target="h:1", method="Search")
    assert str(own) == ("Search on the index service at h:1: no answer before the deadline: "
                        + errors.DeadlineExceededError.hint)


def test_exceptions_are_also_the_matching_builtin_kinds():
    assert issubclass(errors.DeadlineExceededError, TimeoutError)
    assert issubclass(errors.UnavailableError, ConnectionError)
    assert issubclass(errors.NotFoundError, LookupError)
    assert issubclass(errors.InvalidArgumentError, ValueError)


def test_retry_policy_retries_only_unavailable_with_exponential_backoff():
    config = json.loads(RetryPolicy().service_config(["recsys.v1.Index"]))
    (method,) = config["methodConfig"]
    assert method["name"] == [{"service": "recsys.v1.Index"}]
    policy = method["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert policy["maxAttempts"] == 5 and policy["backoffMultiplier"] == 2.0
    assert policy["initialBackoff"].endswith("s") and policy["maxBackoff"].endswith("s")
    assert json.loads(RetryPolicy(max_attempts=1).service_config(["x"])) == {"methodConfig": []}
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=6)


def test_search_params_set_only_what_is_given():
    from client.types import SearchParams
    assert convert.search_params_to_proto(None) is None
    message = convert.search_params_to_proto(SearchParams(hnsw_ef=64))
    assert message.HasField("hnsw_ef") and message.hnsw_ef == 64
    assert not message.HasField("ivf_nprobe") and not message.exact
    message = convert.search_params_to_proto(SearchParams(ivf_nprobe=8, exact=True))
    assert not message.HasField("hnsw_ef") and message.ivf_nprobe == 8 and message.exact
