"""The MQTT socket as both ends' aiomqtt clients must treat it (gateway and server alike).

aiomqtt watches paho's socket with the event loop's `add_reader` / `add_writer`, but when the
socket closes it removes only the reader. A connection lost with data still to send (a burst
being published, the broker gone) leaves its write watch on the closed descriptor; the next
connection's socket usually gets the same descriptor number, and on the standard asyncio
loop its own write watch then never fires: its CONNECT is never sent, and the connection
waits for a CONNACK until its timeout (seen as a gateway back 30 s late after a broker
restart). `ended_with_socket` removes the write watch with the socket.
"""

from __future__ import annotations

from typing import Any

import aiomqtt


def ended_with_socket(client: aiomqtt.Client) -> aiomqtt.Client:
    """The client, its socket's write watch removed whenever the socket closes."""
    inner = client._client
    loop = client._loop
    closed = inner.on_socket_close

    def on_socket_close(paho: Any, userdata: Any, sock: Any) -> None:
        fileno = sock.fileno()
        if fileno > -1:  # paho may close it from the connecting thread: the loop's turn
            loop.call_soon_threadsafe(loop.remove_writer, fileno)
        if closed is not None:
            closed(paho, userdata, sock)

    inner.on_socket_close = on_socket_close
    return client
