#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tcp_relay.py LISTEN_PORT TARGET_HOST TARGET_PORT: relays every TCP
connection to 127.0.0.1:LISTEN_PORT to the target, byte for byte, until it
is killed. The registry tests put it between swarmq and the real registry:
killing it is a registry outage, starting it again on the same port ends
it (the registry itself, shared by the tests, keeps running). Prints
"relay.ready=1" once it listens."""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main():
    port, host, tport = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    async def serve(creader, cwriter):
        try:
            treader, twriter = await asyncio.open_connection(host, tport)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pipe(creader, twriter), pipe(treader, cwriter))

    server = await asyncio.start_server(serve, "127.0.0.1", port,
                                        reuse_address=True)
    print("relay.ready=1", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
