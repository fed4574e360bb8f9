"""A TCP proxy that can freeze its open connections without closing them: a half-open link."""

import asyncio
import contextlib
import threading

# Bytes read from one side before they are written to the other.
CHUNK = 65536


class FreezingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._frozen: list[asyncio.Event] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "FreezingProxy":
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def freeze(self) -> None:
        """Stop forwarding on every open connection, sending nothing, closing nothing."""

        def freeze_all() -> None:
            for event in self._frozen:
                event.set()

        self._loop.call_soon_threadsafe(freeze_all)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        frozen = asyncio.Event()
        self._frozen.append(frozen)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(CHUNK):
                    if frozen.is_set():
                        await asyncio.Event().wait()  # swallow everything, forever
                    writer.write(data)
                    await writer.drain()

        await asyncio.gather(pipe(client_r, upstream_w), pipe(upstream_r, client_w))
