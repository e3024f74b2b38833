"""Token rotation on the REAL index service, without a restart: a changed token file is picked up
within --token-reload-s, or at once on SIGHUP (which never stops the service); during the switch
the old and the new token both work, after it the old one is refused; a broken file keeps the
previous tokens, with one error line in the log and no token in it."""
from __future__ import annotations

import os
import signal
import time

import grpc
import pytest

from client.generated.recsys.v1 import index_pb2, index_pb2_grpc
from tests.procs import health_status, running_pair
from tests.test_index_support import write_tiny_csv

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

OLD, NEW = "rotation-write-old-0123456789ab", "rotation-write-new-0123456789ab"
READ_OLD, READ_NEW = "rotation-read-old-0123456789abc", "rotation-read-new-0123456789abc"
ALL = (OLD, NEW, READ_OLD, READ_NEW)


def _status(address: str, token: str, rpc: str = "GetStats") -> str:
    requests = {"GetStats": index_pb2.GetStatsRequest(),
                "DeleteProducts": index_pb2.DeleteProductsRequest(product_ids=["nope"])}
    with grpc.insecure_channel(address) as channel:
        try:
            getattr(index_pb2_grpc.IndexStub(channel), rpc)(
                requests[rpc], timeout=30, metadata=[("authorization", f"Bearer {token}")])
        except grpc.RpcError as exc:
            assert token not in exc.details()
            return exc.code().name
    return "OK"


def _until(condition, timeout: float = 15.0) -> float:
    """Seconds until `condition()` held (fails after `timeout`)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    pytest.fail(f"not within {timeout}s")


def _write_in_place(path, *tokens: str) -> None:
    with open(path, "r+") as f:
        f.truncate(0)
        f.write("".join(t + "\n" for t in tokens))


@pytest.fixture
def files(tmp_path):
    full, read = tmp_path / "write-tokens", tmp_path / "read-tokens"
    full.write_text(f"{OLD}\n")
    read.write_text(f"{READ_OLD}\n")
    return full, read


@pytest.fixture
def start_index(shared_embedder, files, tmp_path):
    def start(reload_s: str):
        return running_pair(write_tiny_csv(tmp_path / "tiny.csv"), tmp_path / "data",
                            embedder=shared_embedder, index_args=[
                                "--token-file", str(files[0]), "--read-token-file", str(files[1]),
                                "--token-reload-s", reload_s])
    return start


def test_a_changed_file_is_picked_up_within_the_interval(start_index, files):
    full, read = files
    with start_index("0.5") as (_, index):
        address = index.address
        assert _status(address, OLD) == "OK" and _status(address, NEW) == "UNAUTHENTICATED"
        with open(full, "a") as f:                      # step 1: add the new token
            f.write(f"# added for the rotation\n{NEW}\n")
        assert _until(lambda: _status(address, NEW) == "OK") < 10
        assert _status(address, OLD) == "OK"            # both valid during the switch
        _write_in_place(full, NEW)                      # step 3: remove the old one
        _until(lambda: _status(address, OLD) == "UNAUTHENTICATED")
        assert _status(address, NEW) == "OK"

        replacement = read.with_name("read-tokens.new")  # read tokens, file renamed over
        replacement.write_text(f"{READ_NEW}\n")
        os.replace(replacement, read)
        _until(lambda: _status(address, READ_NEW) == "OK")
        assert _status(address, READ_OLD) == "UNAUTHENTICATED"
        assert _status(address, READ_NEW, "DeleteProducts") == "PERMISSION_DENIED"
        assert _status(address, NEW, "DeleteProducts") == "OK"

        _write_in_place(full, "not a token")           # an operator's typo
        time.sleep(2.0)                                 # four intervals
        assert _status(address, NEW) == "OK" and _status(address, READ_NEW) == "OK"
        assert _status(address, OLD) == "UNAUTHENTICATED"
        log = index.output()
    assert log.count("token reload failed, keeping the previous tokens") == 1
    assert log.count("tokens reloaded") >= 3
    for token in ALL:
        assert token not in log


def test_sighup_reloads_at_once_and_never_stops_the_service(start_index, files):
    full, _ = files
    with start_index("0") as (_, index):               # 0: no watcher, SIGHUP only
        address = index.address
        with open(full, "a") as f:
            f.write(f"{NEW}\n")
        time.sleep(1.5)
        assert _status(address, NEW) == "UNAUTHENTICATED"   # nobody looked at the file
        index.proc.send_signal(signal.SIGHUP)
        assert _until(lambda: _status(address, NEW) == "OK") < 5
        assert _status(address, OLD) == "OK"

        _write_in_place(full)                           # emptied, then SIGHUP: refused
        index.proc.send_signal(signal.SIGHUP)
        _until(lambda: "token reload failed" in index.output())
        assert _status(address, NEW) == "OK" and _status(address, OLD) == "OK"
        assert index.proc.poll() is None and health_status(address) == "SERVING"

        _write_in_place(full, NEW)
        index.proc.send_signal(signal.SIGHUP)
        _until(lambda: _status(address, OLD) == "UNAUTHENTICATED")
        assert _status(address, NEW) == "OK"
        assert index.terminate() == 0                   # still a clean SIGTERM drain
    log = index.output()
    for token in ALL:
        assert token not in log
