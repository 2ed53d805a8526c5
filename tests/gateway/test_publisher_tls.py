"""TLS to the broker: server certificate checked against our CA, client certificate sent."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.outbox import Outbox
from gateway.publisher import Publisher
from tests.conditions import async_wait_until
from tests.gateway.conftest import GW, make_publisher
from tests.mosquitto import Mosquitto


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_pki(folder: Path, name: str) -> dict[str, Path]:
    """A CA, a broker certificate for 127.0.0.1 and a gateway client certificate."""
    kinds = ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt", "cli.key", "cli.csr", "cli.crt")
    files = {k: folder / f"{name}-{k}" for k in kinds}
    ext = folder / f"{name}-san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN={name}-test-ca", "-keyout", str(files["ca.key"]),
            "-out", str(files["ca.crt"]))  # fmt: skip
    for who, cn in (("srv", "127.0.0.1"), ("cli", GW)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                "-keyout", str(files[f"{who}.key"]), "-out", str(files[f"{who}.csr"]))  # fmt: skip
        openssl("x509", "-req", "-in", str(files[f"{who}.csr"]), "-CA", str(files["ca.crt"]),
                "-CAkey", str(files["ca.key"]), "-CAcreateserial", "-days", "2",
                "-extfile", str(ext), "-out", str(files[f"{who}.crt"]))  # fmt: skip
    return files


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, Path], dict[str, Path]]]:
    pki = make_pki(tmp_path, "good")
    other = make_pki(tmp_path, "other")
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = Mosquitto(workdir)
    text = broker.config.read_text().replace(
        f"listener {broker.port} 127.0.0.1\n",
        f"listener {broker.port} 127.0.0.1\ncafile {pki['ca.crt']}\ncertfile {pki['srv.crt']}\n"
        f"keyfile {pki['srv.key']}\nrequire_certificate true\n",
    )
    broker.config.write_text(text)
    broker.start()
    yield broker, pki, other
    broker.stop()


def subscriber(port: int, pki: dict[str, Path]) -> tuple[mqtt.Client, list[dict[str, object]]]:
    got: list[dict[str, object]] = []
    ready = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-sub")
    client.tls_set(ca_certs=str(pki["ca.crt"]), certfile=str(pki["cli.crt"]),
                   keyfile=str(pki["cli.key"]), tls_version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip

    def on_connect(c: mqtt.Client, *_: Any) -> None:
        c.subscribe("chargenet/v1/#", qos=1)
        ready.set()

    client.on_connect = on_connect
    client.on_message = lambda _c, _u, m: got.append(json.loads(m.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert ready.wait(10), "TLS subscriber could not connect"
    return client, got


def tls_publisher(port: int, pki: dict[str, Path], ca: Path, outbox: Outbox) -> Publisher:
    return make_publisher(
        f"mqtts://127.0.0.1:{port}", outbox, ca_file=ca, cert_file=pki["cli.crt"],
        key_file=pki["cli.key"],
    )  # fmt: skip


def test_gateway_publishes_over_mutual_tls(
    tls_broker: tuple[Mosquitto, dict[str, Path], dict[str, Path]], tmp_path: Path
) -> None:
    broker, pki, _ = tls_broker
    client, got = subscriber(broker.port, pki)
    outbox = Outbox(tmp_path / "outbox.db", 16 * 1024 * 1024)

    async def scenario() -> None:
        publisher = tls_publisher(broker.port, pki, pki["ca.crt"], outbox)
        task = asyncio.create_task(publisher.run())
        try:
            await async_wait_until(lambda: any(m.get("state") == "online" for m in got), 15,
                                   "the birth over TLS")  # fmt: skip
        finally:
            await publisher.stop()
            task.cancel()

    try:
        asyncio.run(scenario())
    finally:
        client.loop_stop()
        client.disconnect()
        outbox.close()


def test_a_broker_certificate_from_another_ca_is_refused(
    tls_broker: tuple[Mosquitto, dict[str, Path], dict[str, Path]], tmp_path: Path
) -> None:
    broker, pki, other = tls_broker
    outbox = Outbox(tmp_path / "outbox.db", 16 * 1024 * 1024)

    async def scenario() -> None:
        publisher = tls_publisher(broker.port, pki, other["ca.crt"], outbox)
        task = asyncio.create_task(publisher.run())
        try:
            await async_wait_until(
                lambda: "OpenSSL Error" in broker.log.read_text(), 15, "a refused handshake"
            )
            assert not publisher.connected
            assert publisher.counters.connects == 0
        finally:
            task.cancel()

    try:
        asyncio.run(scenario())
    finally:
        outbox.close()
