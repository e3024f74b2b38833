"""ListProducts page by page against a real index service process while products are deleted and
added, each write compacted (--compact-every-writes 1) before the next page, and the service
restarted in the middle of the listing: every product live for the whole listing is listed exactly
once, in catalog order. Then the statuses of odd tokens over gRPC: a row past int64 after a write
(once INTERNAL) and a token of an unknown build (tests/test_list_paging.py covers the cases one
by one, in-process)."""
from __future__ import annotations

import base64
import re
import time

import grpc
import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from index_service import artifacts
from tests.test_index_support import index_stub, start_index, status_of, write_tiny_csv

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
IDS = [f"q{i:02d}" for i in range(40)]
ROWS = [[pid, f"Garden tool number {i}", "Toolsy", f"A sturdy tool, model {i}", "$12.00",
         "Garden|Tools", "Green"] for i, pid in enumerate(IDS)]


def raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def build_id(data_dir) -> str:
    return artifacts.current_build(data_dir)[1]["build_id"]


def is_empty_last_page(stub, token_text: str) -> bool:
    page = stub.ListProducts(pb.ListProductsRequest(page_size=2, page_token=raw(token_text)),
                             timeout=30)
    return not page.products and not page.next_page_token


def wait_compacted(proc, seq: int) -> None:
    """Until the service logs the compaction that folded write `seq` in (it is served by then)."""
    deadline = time.monotonic() + 60
    while not re.search(rf"through seq {seq} into", proc.output()):
        assert time.monotonic() < deadline, f"no compaction of seq {seq}:\n{proc.output()}"
        time.sleep(0.05)


def test_a_listing_across_compactions_and_a_restart_skips_nothing(shared_embedder, tmp_path):
    csv_path, data = write_tiny_csv(tmp_path / "tools.csv", ROWS), tmp_path / "data"
    args = ("--compact-every-writes", "1")
    proc = start_index(shared_embedder.address, csv_path, data, *args)
    stub = index_stub(proc)
    listed, deleted, token, step = [], set(), "", 0
    try:
        while True:
            page = stub.ListProducts(pb.ListProductsRequest(page_size=6, page_token=token),
                                     timeout=30)
            listed += [p.id for p in page.products]
            token, step = page.next_page_token, step + 1
            if not token:
                break
            # one product already listed and two not yet listed (every other page the next page's
            # first, the row the token names), and now and then a new product appended
            pending = [p for p in IDS if p not in listed and p not in deleted]
            doomed = [listed[-2], *pending[step % 2:step % 2 + 2]] if len(pending) > 3 else []
            seq = stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=doomed or ["none"]),
                                      timeout=30).sequence
            deleted |= set(doomed)
            if step % 2:
                seq = stub.UpsertProducts(pb.UpsertProductsRequest(products=[pb.Product(
                    id=f"new{step}", title=f"New garden tool {step}")]), timeout=30).sequence
            wait_compacted(proc, seq)
            if step == 3:   # a clean stop (compacts what is left), then the next start loads it
                assert proc.terminate() == 0, proc.output()
                proc = start_index(shared_embedder.address, csv_path, data, *args)
                stub = index_stub(proc)
        # after a write (its compaction most likely still to come): a row number past int64 is
        # an empty last page, not INTERNAL; so it is in a token naming the build; a token of a
        # build the server does not know is FAILED_PRECONDITION, saying what to do
        seq = stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=["x"]), timeout=30).sequence
        assert is_empty_last_page(stub, "p1:99999999999999999999")
        wait_compacted(proc, seq)           # served from CURRENT's build now
        assert is_empty_last_page(stub, f"p2:{build_id(data)}:99999999999999999999")
        code, details = status_of(lambda: stub.ListProducts(pb.ListProductsRequest(
            page_size=2, page_token=raw("p2:20200101T000000-deadbeef:3")), timeout=30))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "empty page_token" in details
    finally:
        proc.kill()
    throughout = [p for p in IDS if p not in deleted]
    assert [p for p in listed if p in throughout] == throughout
    assert len(listed) == len(set(listed)) and len(deleted) >= 12
