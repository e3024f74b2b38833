"""What tests/test_store_contract.py compares every store with (helper, no tests): an index
service started on one store, and the exact in-process reference (the FAISS build's products and
vectors, a numpy scan with the filter applied in Python)."""
from __future__ import annotations

import grpc
import numpy as np

from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc
from client.generated.recsys.v1 import index_pb2 as pb
from tests.procs import ROOT, ServiceProcess, free_port
from tests.test_index_support import index_stub

CATALOG = ROOT / "data" / "products.csv"


class Served:
    """One index service on one store, with what the tests compare it to."""

    def __init__(self, name: str, proc: ServiceProcess, reference: "Reference"):
        self.name, self.proc, self.ref = name, proc, reference
        self.stub = index_stub(proc)
        self.lexical = name != "milvus"  # Milvus 2.3.5 has no BM25

    def search(self, **fields) -> pb.SearchResponse:
        return self.stub.Search(pb.SearchRequest(**fields), timeout=30)


class Reference:
    """The catalog's products (as the FAISS store serves them) and their vectors."""

    def __init__(self, products: list[dict], vectors: np.ndarray, embedder: ServiceProcess):
        self.products, self.vectors = products, vectors
        self._embed = embedder_pb2_grpc.EmbedderStub(grpc.insecure_channel(embedder.address))

    def query_vector(self, text: str) -> np.ndarray:
        reply = self._embed.Embed(embedder_pb2.EmbedRequest(texts=[text]), timeout=30)
        return np.asarray(reply.embeddings[0].values, dtype=np.float32)

    def top(self, text: str, k: int, keep=lambda p: True) -> list[tuple[str, float]]:
        return self.top_by_vector(self.query_vector(text), k, keep)

    def top_by_vector(self, vector: np.ndarray, k: int, keep=lambda p: True):
        scores = self.vectors @ vector
        ranked = [(self.products[i]["id"], float(scores[i])) for i in np.argsort(-scores, kind="stable")
                  if keep(self.products[i])]
        return ranked[:k]

    def like(self, product_ids: list[str], k: int) -> list[tuple[str, float]]:
        """SimilarProducts' answer: the products nearest the normalized mean of these products'
        vectors, none of them included."""
        rows = [next(i for i, p in enumerate(self.products) if p["id"] == pid) for pid in product_ids]
        mean = self.vectors[rows].astype(np.float64).mean(axis=0)
        return self.top_by_vector(mean / np.linalg.norm(mean), k,
                                  lambda p: p["id"] not in product_ids)


def ids(reply) -> list[str]:
    return [h.product.id for h in reply.hits]


def start(embedder, *store_args) -> ServiceProcess:
    port = free_port()
    proc = ServiceProcess("index_service", ["--port", str(port), "--embedder", embedder.address,
                                            "--catalog", str(CATALOG), *store_args], port)
    return proc.wait_serving(600)


def list_all(stub) -> list[dict]:
    from client.convert import product_from_proto
    products, token = [], ""
    while True:
        page = stub.ListProducts(pb.ListProductsRequest(page_size=100, page_token=token), timeout=30)
        products += [product_from_proto(p).__dict__ for p in page.products]
        token = page.next_page_token
        if not token:
            return products
