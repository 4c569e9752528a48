"""Seed corpus for fuzz_response: what the sandbox really sends, and
JSONTestSuite bodies wrapped in HTTP answers.

Usage: python fuzz/fuzz_response_seeds.py OUTPUT_DIR [JSONTestSuite/test_parsing]

Each seed is one mode byte (0: Session.post, 1: Batch; see
fuzz_response.c) followed by the raw response bytes.  Sandbox answers are
captured off the wire for every scenario (faults included) through a raw
socket, so truncations, resets and chunking are exactly as served.
Written files are named by content hash; re-running adds nothing twice.
"""

from __future__ import annotations

import hashlib
import socket
import sys
import time
from pathlib import Path

from mobilestatus.sandbox import SCENARIOS, Sandbox

MAX_SEED = 64 * 1024
IDLE = 0.3  # seconds without a byte: the answer is complete (or stalled)


def capture(host: str, port: int, path: str, appcode: str, number: str) -> bytes:
    body = f"mobile={number}".encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: APPCODE {appcode}\r\n"
        "Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    data = bytearray()
    with socket.create_connection((host, port), timeout=2.0) as sock:
        sock.sendall(request)
        sock.settimeout(IDLE)
        deadline = time.monotonic() + 3.0
        while len(data) < MAX_SEED and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionError):
                break
            if not chunk:
                break
            data += chunk
    return bytes(data[:MAX_SEED])


def http_200(body: bytes, chunked: bool = False) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n"
    head += b"X-Ca-Request-Id: 00000000-0000-4000-8000-000000000001\r\n"
    if not chunked:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    half = len(body) // 2
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]) if part
    )
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


def write(out: Path, mode: int, data: bytes) -> bool:
    seed = bytes([mode]) + data
    target = out / hashlib.sha1(seed).hexdigest()
    if target.exists():
        return False
    target.write_bytes(seed)
    return True


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    suite = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    added = 0
    with Sandbox() as sb:
        host, port = sb.base_url[len("http://"):].rsplit(":", 1)
        for i, (name, number) in enumerate(sorted(SCENARIOS.items())):
            # Scenario numbers select the behaviour, so the plain path works
            # for all of them; refused/tarpit here are the request-level
            # variants (read, then RST or silence).
            data = capture(host, int(port), "/api-mall/api/mobile_status/check",
                           sb.appcode, number)
            added += write(out, i % 2, data)
        # A gateway refusal for a wrong AppCode, and an unknown path.
        added += write(out, 0, capture(host, int(port),
                                       "/api-mall/api/mobile_status/check",
                                       "wrong", "13800138000"))
        added += write(out, 1, capture(host, int(port), "/nope", sb.appcode,
                                       "13800138000"))
    if suite is not None and suite.is_dir():
        for i, path in enumerate(sorted(suite.glob("*.json"))):
            body = path.read_bytes()
            if len(body) > MAX_SEED - 256:
                continue
            added += write(out, i % 2, http_200(body, chunked=i % 5 == 0))
    print(f"fuzz_response_seeds: {added} new seeds in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
