#!/usr/bin/python3
"""permessage-deflate interop client for the humphrey-ws tests, using Python's `websockets`.

Usage: python_deflate_client.py URL [server_max_window_bits|-] [client_no_context_takeover(0|1)]

Connects offering permessage-deflate (with the given parameters), echoes compressible text and
binary of several sizes, whole and fragmented, and prints one JSON object on stdout:
  {"extensions": [...], "cases": [{"name", "ok"}...]}
Exit status 0 when the script ran to the end, 2 on a crash.
"""

import asyncio
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory


def text(n, seed):
    out = "["
    i = 0
    while len(out) < n:
        out += '{"id":%d,"name":"user-%d","ok":%s},' % (seed * 1000 + i, (seed + i) % 23, "true" if i % 2 else "false")
        i += 1
    return out[:n]


async def main():
    url = sys.argv[1]
    server_bits = None if len(sys.argv) < 3 or sys.argv[2] == "-" else int(sys.argv[2])
    client_no_takeover = len(sys.argv) > 3 and sys.argv[3] == "1"
    factory = ClientPerMessageDeflateFactory(
        server_max_window_bits=server_bits,
        client_no_context_takeover=client_no_takeover,
        client_max_window_bits=True,
    )
    cases = []
    async with websockets.connect(url, extensions=[factory], compression=None, max_size=None) as ws:
        extensions = [
            {
                "name": e.name,
                "remote_no_context_takeover": e.remote_no_context_takeover,
                "local_no_context_takeover": e.local_no_context_takeover,
                "remote_max_window_bits": e.remote_max_window_bits,
                "local_max_window_bits": e.local_max_window_bits,
            }
            for e in ws.extensions
        ]
        for size in (0, 10, 2000, 70000, 1000000):
            for seed in (1, 2):
                message = text(size, seed)
                await ws.send(message)
                cases.append({"name": "text-%d" % size, "ok": (await ws.recv()) == message})
                data = message.encode()
                await ws.send(data)
                cases.append({"name": "binary-%d" % size, "ok": (await ws.recv()) == data})
        fragments = [text(3000, 5), text(100, 6), text(50000, 7)]
        await ws.send(fragments)
        cases.append({"name": "fragmented", "ok": (await ws.recv()) == "".join(fragments)})
    print(json.dumps({"extensions": extensions, "cases": cases}))


try:
    asyncio.run(main())
except Exception as error:  # report, do not hang the test
    print(json.dumps({"crash": repr(error)}))
    sys.exit(2)
