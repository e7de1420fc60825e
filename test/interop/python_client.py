#!/usr/bin/python3
"""Interop client for the humphrey-ws test suite, using Python's `websockets` (10.x).

Usage: python_client.py URL [--ca CERT.pem]

Runs a fixed script against an echo server at URL and prints one JSON object on stdout:

  {"protocol": ..., "cases": [{"name", "ok", "detail"}...],
   "server_close": {"code", "reason"}, "client_close": {"code", "reason"}}

Phase 1 (one connection, offering subprotocols "humphrey.test" and "other"): every case sends
a message and checks the echo is identical in kind and content; a fragmented text and binary
message (sent as an iterable of fragments); a ping whose pong must arrive; then the text
"close-me", after which the server closes with 4001 "server bye".
Phase 2 (a second connection): one echo, then the client closes with 4000 "python bye".

Exit status 0 when the script ran to the end (the test judges the cases), 2 on a crash.
"""

import asyncio
import json
import ssl
import sys

import websockets


def pattern(n, seed):
    """n bytes that are not valid UTF-8 (starts with 0xff) when n > 0."""
    out = bytearray((i * 131 + seed * 7 + (i >> 8)) & 0xFF for i in range(n))
    if n:
        out[0] = 0xFF
    return bytes(out)


def text_of(n):
    """A str whose UTF-8 encoding is exactly n bytes, mixing 1- to 4-byte characters."""
    pieces = ["a", "\u00e9", "\u20ac", "\U0001F600", "\u8a9e"]
    out, size, i = [], 0, 0
    while True:
        piece = pieces[i % len(pieces)]
        i += 1
        length = len(piece.encode("utf-8"))
        if size + length > n or size > n - 4:
            break
        out.append(piece)
        size += length
    return "".join(out) + "x" * (n - size)


CASES = [
    ("text", "hello from python"),
    ("unicode", "h\u00e9llo w\u00f6rld \u20ac \U0001F600 \u8a9e"),
    ("empty-text", ""),
    ("empty-binary", b""),
    ("binary-small", pattern(10, 1)),
    ("text-125", text_of(125)),
    ("binary-126", pattern(126, 2)),
    ("text-65535", text_of(65535)),
    ("binary-65536", pattern(65536, 3)),
    ("text-1MiB", text_of(1 << 20)),
    ("binary-1MiB", pattern(1 << 20, 4)),
]


def describe(value):
    kind = "text" if isinstance(value, str) else "binary"
    size = len(value.encode("utf-8")) if isinstance(value, str) else len(value)
    return f"{kind} of {size} bytes"


async def echo_case(ws, name, outgoing, fragments=None):
    await ws.send(fragments if fragments is not None else outgoing)
    incoming = await asyncio.wait_for(ws.recv(), 10)
    ok = type(incoming) is type(outgoing) and incoming == outgoing
    detail = describe(outgoing) if ok else f"sent {describe(outgoing)}, got {describe(incoming)}"
    return {"name": name, "ok": ok, "detail": detail}


async def main():
    url = sys.argv[1]
    ssl_context = None
    if "--ca" in sys.argv:
        ssl_context = ssl.create_default_context(cafile=sys.argv[sys.argv.index("--ca") + 1])
    options = dict(max_size=None, ping_interval=None, close_timeout=5, open_timeout=5)
    if ssl_context is not None:
        options["ssl"] = ssl_context

    result = {"cases": []}
    async with websockets.connect(url, subprotocols=["humphrey.test", "other"], **options) as ws:
        result["protocol"] = ws.subprotocol
        for name, value in CASES:
            result["cases"].append(await echo_case(ws, name, value))

        frag_text = text_of(3000)
        encoded = frag_text.encode("utf-8")
        # Fragments cut inside multi-byte characters must still form valid text as a whole,
        # but websockets sends str fragments, so cut on character boundaries here.
        pieces = [frag_text[:700], frag_text[700:701], frag_text[701:]]
        assert "".join(pieces) == frag_text and len(encoded) == 3000
        result["cases"].append(await echo_case(ws, "fragmented-text", frag_text, pieces))
        frag_bin = pattern(100000, 5)
        result["cases"].append(
            await echo_case(ws, "fragmented-binary", frag_bin, [frag_bin[:1], frag_bin[1:50000], frag_bin[50000:]])
        )

        pong = await ws.ping(b"py-ping")
        try:
            await asyncio.wait_for(pong, 5)
            result["cases"].append({"name": "ping", "ok": True, "detail": "pong received"})
        except asyncio.TimeoutError:
            result["cases"].append({"name": "ping", "ok": False, "detail": "no pong within 5 s"})

        await ws.send("close-me")
        try:
            extra = await asyncio.wait_for(ws.recv(), 10)
            result["cases"].append({"name": "server-close", "ok": False, "detail": f"got a message: {extra!r}"[:200]})
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(ws.wait_closed(), 10)
        result["server_close"] = {"code": ws.close_code, "reason": ws.close_reason}

    async with websockets.connect(url, **options) as ws:
        result["cases"].append(await echo_case(ws, "second-connection", "again"))
        await ws.close(4000, "python bye")
        result["client_close"] = {"code": ws.close_code, "reason": ws.close_reason}

    print(json.dumps(result))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:  # report, do not hang
        print(json.dumps({"crash": f"{type(error).__name__}: {error}"}))
        sys.exit(2)
