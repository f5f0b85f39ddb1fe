"""W8's subscribers: one process holding many graphql-transport-ws subscriptions.

`python -m bench.live_clients URL PLAN_FILE` opens the subscriptions the plan (JSON) lists,
spread over WebSocket connections of `per_connection` each, prints `ready` once every one
is acknowledged, then records each event's delay (its receipt time minus the send time the
writer put in the book's title) until it reads `stop` on stdin, and prints its tally as JSON.
"""

import asyncio
import json
import sys
import time
from typing import Any

import orjson
import websockets

SUBSCRIPTION = (
    "subscription W8($filter: BookFilter) { bookChanged(filter: $filter) { kind node { title } } }"
)


async def connection(
    url: str, filters: list[dict[str, Any]], delays: list[float], ready: asyncio.Event
) -> None:
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")], max_queue=None
    ) as socket:
        await socket.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        acknowledged = orjson.loads(await socket.recv())
        assert acknowledged["type"] == "connection_ack", acknowledged
        for number, condition in enumerate(filters):
            message = {
                "id": str(number),
                "type": "subscribe",
                "payload": {"query": SUBSCRIPTION, "variables": {"filter": condition}},
            }
            await socket.send(orjson.dumps(message).decode())
        ready.set()
        async for raw in socket:
            message = orjson.loads(raw)
            kind = message.get("type")
            if kind == "next":
                title = message["payload"]["data"]["bookChanged"]["node"]["title"]
                sent = int(title.rsplit(" ", 1)[-1])
                delays.append(time.time_ns() - sent)
            elif kind == "ping":
                await socket.send('{"type":"pong"}')
            elif kind in ("error", "complete"):
                raise RuntimeError(f"subscription ended: {message}")


async def main(url: str, plan: dict[str, Any]) -> None:
    filters: list[dict[str, Any]] = plan["filters"]
    per = plan["per_connection"]
    delays: list[float] = []
    groups = [filters[i : i + per] for i in range(0, len(filters), per)]
    readies = [asyncio.Event() for _ in groups]
    tasks = [
        asyncio.create_task(connection(url, group, delays, ready))
        for group, ready in zip(groups, readies, strict=True)
    ]
    waiting: asyncio.Future[Any] = asyncio.ensure_future(
        asyncio.gather(*(ready.wait() for ready in readies))
    )
    done, _ = await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if waiting not in done:
        for finished in done:
            finished.result()  # raises what ended it
    # The server registers a subscription when its message arrives: give the last ones a
    # moment, then say so.
    await asyncio.sleep(1.0)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    failed = [task for task in tasks if task.done() and task.exception() is not None]
    for task in tasks:
        task.cancel()
    print(
        json.dumps(
            {
                "delays_ns": delays,
                "failed_connections": len(failed),
                "errors": [repr(task.exception()) for task in failed][:3],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    with open(sys.argv[2]) as plan_file:
        asyncio.run(main(sys.argv[1], json.load(plan_file)))
