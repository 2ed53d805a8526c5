"""Station posters: a valid A4 PDF naming the station, whose printed QR code (rendered and
decoded as a phone would) is exactly LINE's oaMessage URL; from the API and the CLI."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pypdf
import pypdfium2
import pytest
import zxingcpp
from fastapi import FastAPI
from pydantic import SecretStr
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm

from server.api.app import create_app
from server.db.migrate import upgrade
from server.db.session import Database
from server.line.posters import OfficialAccountUnset, oa_message_url, poster_pdf, station_url
from server.line.posters_cli import main as posters_main
from server.line.prefill import poster_message, poster_station
from server.registry import Registry, load_demo_registry
from server.registry.models import StationSpec
from server.settings import Settings

ACCOUNT = "@123abcde"
TOKEN = "poster-admin-token"
OZU = StationSpec(
    id="ozu-01", name_ja="大洲市立大洲小学校", name_en="Ozu Elementary School",
    latitude=33.5068, longitude=132.5431, address="愛媛県大洲市大洲",
)  # fmt: skip
OZU_URL = (  # written out, so a change of encoding cannot pass unnoticed
    "https://line.me/R/oaMessage/%40123abcde/?%E5%85%85%E9%9B%BB%E4%BA%88%E7%B4%84%20ozu-01"
)
RENDER_SCALE = 3.0
"""Pixels per point when rendering the page to decode it (216 dpi, a phone sees less)."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def page_text(pdf: bytes) -> tuple[pypdf.PageObject, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0], reader.pages[0].extract_text()


def decode_qr(pdf: bytes) -> tuple[str, str, float]:
    """The one QR code on the rendered page: its text, error correction level and width
    in points."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=RENDER_SCALE).to_pil()
    finally:
        document.close()
    found = zxingcpp.read_barcodes(image)
    assert [b.format for b in found] == [zxingcpp.BarcodeFormat.QRCode], [b.text for b in found]
    corners = found[0].position
    width_px = max(corners.top_right.x, corners.bottom_right.x) - min(
        corners.top_left.x, corners.bottom_left.x
    )
    return found[0].text, found[0].ec_level, width_px / RENDER_SCALE


def test_the_poster_is_a4_names_the_station_and_its_qr_opens_the_chat_prefilled() -> None:
    pdf = poster_pdf(OZU, ACCOUNT)
    assert pdf.startswith(b"%PDF-")
    page, text = page_text(pdf)
    assert (round(float(page.mediabox.width), 1), round(float(page.mediabox.height), 1)) == (
        round(A4[0], 1), round(A4[1], 1))  # fmt: skip
    for wanted in ("大洲市立大洲小学校", "Ozu Elementary School", "愛媛県大洲市大洲",
                   "LINEで充電の予約", "Book a charging slot on LINE", ACCOUNT):  # fmt: skip
        assert wanted in text
    for step in ("1", "2", "3"):
        assert f"\n{step}\n" in text
    url, ec_level, width_pt = decode_qr(pdf)
    assert url == OZU_URL == station_url(ACCOUNT, "ozu-01")
    assert ec_level in ("M", "Q", "H")
    assert width_pt >= 6 * cm


def test_the_prefilled_message_is_the_one_the_conversation_reads_as_this_station() -> None:
    assert poster_message("ozu-01") == "充電予約 ozu-01"
    assert poster_station(poster_message("ozu-01")) == "ozu-01"
    assert poster_station("充電予約\u3000ozu-01 ") == "ozu-01"  # a full-width space typed
    assert poster_station("充電") is None
    assert poster_station("充電予約 ozu 01") is None
    assert oa_message_url("@a", "a b&c/d") == "https://line.me/R/oaMessage/%40a/?a%20b%26c%2Fd"


def test_long_names_wrap_and_are_cut_so_the_qr_code_stays_on_the_page() -> None:
    long = OZU.model_copy(update={
        "name_ja": "避難所" * 66, "name_en": "Shelter " * 25, "address": "愛媛県" * 100,
    })  # fmt: skip
    pdf = poster_pdf(long, ACCOUNT)
    _page, text = page_text(pdf)
    assert "避難所避難所" in text and "Shelter Shelter" in text and "…" in text
    url, _ec, width_pt = decode_qr(pdf)
    assert url == station_url(ACCOUNT, "ozu-01")
    assert width_pt >= 6 * cm


@pytest.mark.parametrize("account_id", ["", "123abcde", "@has space"])
def test_an_unset_or_malformed_account_id_is_refused_naming_the_setting(account_id: str) -> None:
    with pytest.raises(OfficialAccountUnset) as raised:
        poster_pdf(OZU, account_id)
    assert "line_official_account_id" in raised.value.message
    assert raised.value.status == 409


async def _app(tmp_path: Path, account_id: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'posters.sqlite3'}", mqtt_url=None,
        admin_token=SecretStr(TOKEN), line_official_account_id=account_id,
    )  # fmt: skip
    application: FastAPI = create_app(settings)
    async with application.router.lifespan_context(application):
        await load_demo_registry(application.state.services.db)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _app(tmp_path, ACCOUNT):
        yield http


@pytest.mark.anyio
async def test_the_endpoint_needs_the_admin_token_and_serves_the_pdf(
    client: httpx.AsyncClient,
) -> None:
    path = "/api/v1/stations/ozu-01/poster.pdf"
    assert (await client.get(path)).status_code == 401
    wrong = await client.get(path, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    answer = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert 'filename="poster-ozu-01.pdf"' in answer.headers["content-disposition"]
    _page, text = page_text(answer.content)
    assert "大洲市立大洲小学校" in text
    assert decode_qr(answer.content)[0] == OZU_URL
    missing = await client.get("/api/v1/stations/nowhere/poster.pdf",
                               headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert missing.status_code == 404


@pytest.mark.anyio
async def test_the_endpoint_without_an_account_id_is_409_naming_the_setting(
    tmp_path: Path,
) -> None:
    async for http in _app(tmp_path, ""):
        answer = await http.get("/api/v1/stations/ozu-01/poster.pdf",
                                headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        assert answer.status_code == 409
        error = answer.json()["error"]
        assert error["code"] == "line_official_account_id_unset"
        assert "line_official_account_id" in error["message"]


@pytest.fixture
def registry_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite database holding the demo's stations, configured for the CLI."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade(url)

    async def load() -> int:
        db = Database(url)
        try:
            report = await load_demo_registry(db)
            return len(report.stations.created)
        finally:
            await db.dispose()

    assert asyncio.run(load()) >= 2
    monkeypatch.setenv("CHARGENET_DATABASE_URL", url)
    monkeypatch.setenv("CHARGENET_LINE_OFFICIAL_ACCOUNT_ID", ACCOUNT)
    return url


def test_the_cli_writes_one_poster_per_station(registry_url: str, tmp_path: Path) -> None:
    async def ids() -> list[str]:
        db = Database(registry_url)
        try:
            return [s.id for s in await Registry(db).list_stations()]
        finally:
            await db.dispose()

    every = asyncio.run(ids())
    out = tmp_path / "all"
    assert posters_main(["--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"poster-{i}.pdf" for i in every)
    some = tmp_path / "some"
    assert posters_main(["--station", "ozu-02", "--station", "ozu-01", "--out", str(some)]) == 0
    assert sorted(p.name for p in some.iterdir()) == ["poster-ozu-01.pdf", "poster-ozu-02.pdf"]
    pdf = (some / "poster-ozu-01.pdf").read_bytes()
    assert decode_qr(pdf)[0] == OZU_URL


def test_the_cli_refuses_an_unset_account_id_and_an_unknown_station(
    registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "out"
    assert posters_main(["--station", "nowhere", "--out", str(out)]) == 2
    assert "nowhere" in capsys.readouterr().err
    monkeypatch.setenv("CHARGENET_LINE_OFFICIAL_ACCOUNT_ID", "")
    assert posters_main(["--out", str(out)]) == 2
    assert "line_official_account_id" in capsys.readouterr().err
    assert not out.exists()
