"""One gRPC call written by hand on HTTP/2 (helper, no tests): headers that no gRPC client sends.

gRPC clients refuse to send some metadata (a non-ASCII value, say: grpc-core fails the call on the
client side), so a test of what a *server* does with such bytes must write the frames itself:

    status, message = raw_call("127.0.0.1:50052", "/recsys.v1.Index/GetStats",
                               [(b"authorization", b"Bearer \\xff\\xfe")])

It sends the connection preface, an empty SETTINGS frame, one HEADERS block (HPACK literals
without Huffman coding or indexing, split into CONTINUATION frames when long) and one empty gRPC
message, then reads frames until the stream's trailers (grpc-status) or a RST_STREAM / GOAWAY.
Plaintext, or TLS with `tls` (an ssl.SSLContext; ALPN h2 is set here).
"""
from __future__ import annotations

import socket
import ssl
import struct
import time
import urllib.parse

DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x7, 0x9
END_STREAM, END_HEADERS = 0x1, 0x4
MAX_FRAME = 16384
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload


def _int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """HPACK integer (RFC 7541 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    return bytes([*out, value])


def _read_int(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    limit = (1 << prefix_bits) - 1
    value, pos = data[pos] & limit, pos + 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        byte, pos = data[pos], pos + 1
        value += (byte & 127) << shift
        shift += 7
        if not byte & 128:
            return value, pos


def _literal(name: bytes, value: bytes) -> bytes:
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    return b"\x00" + _int(len(name), 7) + name + _int(len(value), 7) + value


def _string(data: bytes, pos: int) -> tuple[bytes | None, int]:
    huffman = data[pos] & 0x80
    length, pos = _read_int(data, pos, 7)
    return (None if huffman else data[pos:pos + length]), pos + length


def _decode_literals(block: bytes) -> dict[bytes, bytes]:
    """The literal, non-Huffman fields of an HPACK block with new names (how grpc-core sends
    grpc-status and grpc-message); indexed fields are skipped."""
    fields, pos = {}, 0
    while pos < len(block):
        byte = block[pos]
        if byte & 0x80:                      # indexed field
            _, pos = _read_int(block, pos, 7)
            continue
        if byte & 0xE0 == 0x20:              # dynamic table size update
            _, pos = _read_int(block, pos, 5)
            continue
        index, pos = _read_int(block, pos, 6 if byte & 0x40 else 4)
        name = None
        if index == 0:
            name, pos = _string(block, pos)
        value, pos = _string(block, pos)
        if name is not None and value is not None:
            fields[name] = value
    return fields


def _headers_frames(block: bytes) -> bytes:
    chunks = [block[i:i + MAX_FRAME] for i in range(0, len(block), MAX_FRAME)] or [b""]
    frames = []
    for i, chunk in enumerate(chunks):
        flags = END_HEADERS if i == len(chunks) - 1 else 0
        frames.append(_frame(HEADERS if i == 0 else CONTINUATION, flags, 1, chunk))
    return b"".join(frames)


def _connect(address: str, tls: ssl.SSLContext | None, timeout: float):
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    if tls is None:
        return sock
    tls.set_alpn_protocols(["h2"])
    return tls.wrap_socket(sock, server_hostname="localhost")


def raw_call(address: str, method: str, headers: list[tuple[bytes, bytes]], *,
             tls: ssl.SSLContext | None = None, timeout: float = 10.0) -> tuple[str, str]:
    """(status, message): status is the grpc-status number as text, or "RST_STREAM <code>",
    "GOAWAY <code>", "CLOSED" (connection closed first) or "TIMEOUT"."""
    base = [(b":method", b"POST"), (b":scheme", b"https" if tls else b"http"),
            (b":path", method.encode()), (b":authority", b"localhost"),
            (b"content-type", b"application/grpc"), (b"te", b"trailers")]
    block = b"".join(_literal(n, v) for n, v in base + list(headers))
    empty_message = b"\x00" + struct.pack(">I", 0)
    with _connect(address, tls, timeout) as sock:
        sock.sendall(PREFACE + _frame(SETTINGS, 0, 0, b"") + _headers_frames(block)
                     + _frame(DATA, END_STREAM, 1, empty_message))
        return _read_status(sock, time.monotonic() + timeout)


def _read_status(sock, deadline: float) -> tuple[str, str]:
    buffer = b""
    while time.monotonic() < deadline:
        while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
            length = int.from_bytes(buffer[:3], "big")
            kind, stream, payload = buffer[3], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF, \
                buffer[9:9 + length]
            buffer = buffer[9 + length:]
            if kind == RST_STREAM and stream == 1:
                return f"RST_STREAM {int.from_bytes(payload[:4], 'big')}", ""
            if kind == GOAWAY:
                return f"GOAWAY {int.from_bytes(payload[4:8], 'big')}", ""
            if kind == HEADERS and stream == 1:
                fields = _decode_literals(payload)
                if b"grpc-status" in fields:
                    message = urllib.parse.unquote(fields.get(b"grpc-message", b"").decode())
                    return fields[b"grpc-status"].decode(), message
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        if not chunk:
            return "CLOSED", ""
        buffer += chunk
    return "TIMEOUT", ""
