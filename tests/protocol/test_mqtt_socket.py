"""A closed MQTT socket takes its write watch with it, so that the next connection's
socket, which gets the same descriptor number, is written to (its CONNECT sent)."""

from __future__ import annotations

import asyncio
import socket

import aiomqtt

from protocol.mqtt_socket import ended_with_socket


def test_the_next_socket_on_the_same_descriptor_is_written_to() -> None:
    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        client = ended_with_socket(aiomqtt.Client("127.0.0.1", 1))
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            old = socket.create_connection(listener.getsockname())
            fileno = old.fileno()
            loop.add_writer(fileno, lambda: None)  # data was still to be sent
            closing = client._client.on_socket_close
            assert closing is not None
            closing(client._client, None, old)  # as paho calls it
            old.close()
            new = socket.create_connection(listener.getsockname())
            try:
                assert new.fileno() == fileno  # the case that hung: the number reused
                writable = asyncio.Event()
                # registered as paho registers it (aiomqtt: through the loop, in order), so
                # after the removal the close scheduled
                loop.call_soon_threadsafe(loop.add_writer, new.fileno(), writable.set)
                try:
                    async with asyncio.timeout(5):
                        await writable.wait()
                finally:
                    loop.remove_writer(new.fileno())
                return True
            finally:
                new.close()

    assert asyncio.run(scenario())
