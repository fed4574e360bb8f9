"""Open and drop many streams fast, some politely, some abruptly in the middle of a frame."""

import asyncio
import socket
import struct
from urllib.parse import urlsplit

# Streams in flight at once; each cycle connects, reads a little, and leaves.
CONCURRENCY = 50
CYCLE_TIMEOUT_SECONDS = 10


def churn(base: str, tenant_id: str, cookies: dict[str, str], cycles: int) -> int:
    return asyncio.run(_churn(base, tenant_id, cookies, cycles))


async def _churn(base: str, tenant_id: str, cookies: dict[str, str], cycles: int) -> int:
    address = urlsplit(base)
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    request = (
        f"GET /api/v1/stream/{tenant_id} HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Cookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    gate = asyncio.Semaphore(CONCURRENCY)
    done = 0

    async def cycle(index: int) -> None:
        nonlocal done
        async with gate:
            reader, writer = await asyncio.open_connection(address.hostname, address.port)
            writer.write(request)
            # Read the headers and some of the body (often mid-frame), then leave.
            await reader.readuntil(b"\r\n\r\n")
            await reader.read(64 + index % 200)
            if index % 2:
                # Abrupt: RST instead of FIN, as a crashed browser or a dropped network.
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            done += 1

    async with asyncio.timeout(CYCLE_TIMEOUT_SECONDS * cycles / CONCURRENCY):
        await asyncio.gather(*(cycle(i) for i in range(cycles)))
    return done
