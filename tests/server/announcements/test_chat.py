"""「お知らせ」/"news" in the chat, with the fake desk: an unregistered resident is told to
register first; a registered one reads the newest announcements of their district and
situation, a drill's only when they take part in drills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.announcements.audience import Heard, Sent, Targets
from server.announcements.chat import on_announcements
from server.line.conversation import Chat, Registration
from server.line.routes import ROUTES, Intent, intent_of
from tests.server.line.test_conversation import FakeDesk, run

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # 12:00 in Japan


def heard(minutes: int, ja: str, targets: Targets, drill: bool = False) -> Heard:
    return Heard(Sent(T0 + timedelta(minutes=minutes), ja, f"{ja} (en)", drill), targets)


def desk() -> FakeDesk:
    ozu = "大洲市"
    return FakeDesk(
        registrations={"U1": Registration("U1", ozu, "肱南", "car")},
        heard=[  # newest first
            heard(50, "訓練の炊き出し", Targets(ozu, ("肱南",), drill_id=1), drill=True),
            heard(40, "菅田だけ", Targets(ozu, ("菅田",))),
            heard(30, "車中泊の方へ", Targets(ozu, (), ("car",))),
            heard(20, "避難所の方へ", Targets(ozu, (), ("shelter",))),
            heard(10, "肱南 12:00 炊き出し", Targets(ozu, ("肱南", "菅田"))),
            heard(5, "体育館の予約者へ", Targets(ozu, stations=("ozu-01",))),
            heard(1, "内子町", Targets("内子町", ("肱南",))),
        ],
    )  # fmt: skip


def test_the_words_route_to_the_handler_in_both_languages() -> None:
    assert ROUTES[Intent.ANNOUNCEMENTS] is on_announcements
    for word, language in (("お知らせ", "ja"), ("ｵｼﾗｾ", None), ("News", "en"),
                           ("announcements", "en")):  # fmt: skip
        routed = intent_of(word)
        if language is None:  # half-width katakana is not the word
            assert routed.key is Intent.PLACE
            continue
        assert (routed.key, routed.language) == (Intent.ANNOUNCEMENTS, language)


def test_a_registered_resident_reads_the_newest_of_their_district_and_situation() -> None:
    reply = run(on_announcements, desk(), Chat("U1"))
    (message,) = reply.messages
    text = message["text"]
    assert text.startswith("大洲市 肱南への最新のお知らせ")
    assert "12/7 12:30 車中泊の方へ" in text and "12/7 12:10 肱南 12:00 炊き出し" in text
    for other in ("菅田だけ", "避難所の方へ", "体育館の予約者へ", "内子町", "訓練"):
        assert other not in text
    assert text.index("車中泊") < text.index("炊き出し")  # newest first
    assert message["quickReply"]["items"]  # the menu, as every answer


def test_in_english_and_a_drills_announcement_only_to_participants() -> None:
    reply = run(on_announcements, desk(), Chat("U1", language="en", drill_opt_in=True))
    text = reply.messages[0]["text"]
    assert text.startswith("The latest announcements for 肱南, 大洲市")
    assert "[DRILL] 訓練の炊き出し (en)" in text
    assert text.count("\n12/7") == 3  # the newest three


def test_a_resident_registered_at_a_shelter_reads_its_announcements_too() -> None:
    fake = desk()
    fake.registrations["U1"] = Registration("U1", "大洲市", "大洲", "shelter", None, "ozu-01")
    text = run(on_announcements, fake, Chat("U1")).messages[0]["text"]
    assert "体育館の予約者へ" in text and "避難所の方へ" in text and "菅田だけ" not in text
    fake.registrations["U1"] = Registration("U1", "大洲市", "大洲", "shelter", None, "ozu-02")
    assert "体育館の予約者へ" not in run(on_announcements, fake, Chat("U1")).messages[0]["text"]


def test_an_unregistered_resident_is_told_to_register_first() -> None:
    for language, word in (("ja", "「登録」"), ("en", "“register”")):
        reply = run(on_announcements, desk(), Chat("U2", language=language))
        assert word in reply.messages[0]["text"]


def test_none_yet() -> None:
    fake = FakeDesk(registrations={"U1": Registration("U1", "内子町", None, "home")})
    reply = run(on_announcements, fake, Chat("U1"))
    assert reply.messages[0]["text"] == "内子町へのお知らせは、まだありません。"
