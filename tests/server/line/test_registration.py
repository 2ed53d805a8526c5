"""Registering a district and situation, each handler with the fake desk: consent first,
then municipality, district, stay and need; shown, changed and deleted, in both languages."""

from __future__ import annotations

from server.line import registration as reg
from server.line.conversation import Chat, Registration, Reply
from server.line.routes import intent_of
from tests.server.line.test_conversation import FakeDesk, run

OZU = ["大洲", "肱南", "菅田"]


def desk() -> FakeDesk:
    return FakeDesk(district_lists={"大洲市": OZU, "内子町": []})


def answers(reply: Reply) -> list[str]:
    """What the quick replies of the reply's last message send."""
    items = reply.messages[-1]["quickReply"]["items"]
    return [i["action"]["text"] for i in items]


def say(fake: FakeDesk, chat: Chat, text: str) -> Reply:
    """The resident types (or taps) `text` while the chat stands at `chat`."""
    routed = intent_of(text)
    handler = {"register": reg.on_register, "registration": reg.on_registration,
               "unregister": reg.on_unregister}.get(routed.key, reg.on_typed)  # fmt: skip
    return run(handler, fake, chat, params=dict(routed.params))


def test_registering_in_japanese_asks_consent_first_and_stores_the_minimum() -> None:
    fake = desk()
    asked = say(fake, Chat("U1"), "登録")
    consent = asked.messages[0]["text"]
    assert "お名前や位置情報は保存せず" in consent and "登録削除" in consent
    assert answers(asked) == ["はい", "いいえ"] and asked.chat.step == reg.STEP_CONSENT
    assert fake.registrations == {}
    town = say(fake, asked.chat, "はい")
    assert answers(town) == ["内子町", "大洲市", "やめる"]
    district = say(fake, town.chat, answers(town)[1])
    assert answers(district) == [*OZU, "やめる"] and district.chat.step_data == {"m": "大洲市"}
    unknown = say(fake, district.chat, "どこか")
    assert "「どこか」は選べませんでした" in unknown.messages[0]["text"]
    assert unknown.chat.step == reg.STEP_DISTRICT
    stay = say(fake, district.chat, "肱南")
    assert answers(stay) == ["避難所", "自宅", "親類・知人の家", "車中", "やめる"]
    assert fake.registrations == {}  # nothing before the last answer
    need = say(fake, stay.chat, "車中")
    asked_need = need.messages[0]["text"]
    assert "人工呼吸器" in asked_need and "優先が決まるわけではありません" in asked_need
    done = say(fake, need.chat, "医療機器を使用")
    wanted = Registration("U1", "大洲市", "肱南", "car", "medical_device")
    assert fake.registrations == {"U1": wanted}
    assert "登録しました" in done.messages[0]["text"] and "車中" in done.messages[1]["text"]
    assert done.chat.step is None and done.chat.step_data == {}


def test_registering_in_english_a_change_replaces_and_no_district_list_is_skipped() -> None:
    fake = desk()
    fake.registrations["U1"] = Registration("U1", "大洲市", "大洲", "shelter", "care")
    en = Chat("U1", language="en")
    asked = say(fake, en, "register")
    assert "No name, no location" in asked.messages[0]["text"]
    town = say(fake, asked.chat, "Yes")
    stay = say(fake, town.chat, "内子町")  # no districts: straight to where they stay
    assert stay.chat.step == reg.STEP_STAY and stay.chat.step_data == {"m": "内子町", "d": None}
    need = say(fake, stay.chat, "home")  # typed, in lower case
    done = say(fake, need.chat, "None")
    assert fake.registrations["U1"] == Registration("U1", "内子町", None, "home", None)
    shown = say(fake, done.chat, "my registration").messages[0]["text"]
    assert "Municipality: 内子町" in shown and "District: (none)" in shown
    assert "Staying: Home" in shown and "Medical device or care: None" in shown


def test_declining_or_stopping_stores_nothing() -> None:
    fake = desk()
    asked = say(fake, Chat("U1"), "登録")
    declined = say(fake, asked.chat, "いいえ")
    assert "何も保存していません" in declined.messages[0]["text"] and declined.chat.step is None
    town = say(fake, say(fake, Chat("U2", language="en"), "register").chat, "yes")
    stopped = say(fake, say(fake, town.chat, "大洲市").chat, "Stop")
    assert "nothing" in stopped.messages[0]["text"] and stopped.chat.step is None
    assert fake.registrations == {}


def test_deleting_removes_the_registration_at_once_in_either_language() -> None:
    fake = desk()
    fake.registrations["U1"] = Registration("U1", "大洲市", "菅田", "relatives", None)
    shown = say(fake, Chat("U1"), "登録確認").messages[0]["text"]
    assert "地区：菅田" in shown and "親類・知人の家" in shown
    assert "医療機器・介護：特になし" in shown
    gone = say(fake, Chat("U1"), "登録削除")
    assert "削除しました" in gone.messages[0]["text"] and fake.registrations == {}
    again = say(fake, Chat("U1", language="en"), "delete registration")
    assert again.messages[0]["text"].startswith("You are not registered")
    mid = Chat("U1", step=reg.STEP_STAY, step_data={"m": "大洲市", "d": "大洲"})
    dropped = say(fake, mid, "登録削除")
    assert dropped.chat.step is None and dropped.chat.step_data == {}
    none = say(fake, Chat("U1", language="en"), "my registration")
    assert "not registered" in none.messages[0]["text"]


def test_typed_text_outside_registration_is_still_a_place_name() -> None:
    reply = say(desk(), Chat("U1"), "どこか")
    assert "わかりませんでした" in reply.messages[0]["text"]


def test_a_long_list_offers_twelve_and_stop_and_takes_any_typed_name() -> None:
    many = [f"第{n}地区" for n in range(1, 21)]
    fake = FakeDesk(district_lists={"大洲市": many})
    town = Chat("U1", step=reg.STEP_MUNICIPALITY)
    district = say(fake, town, "大洲市")
    assert answers(district) == [*many[:12], "やめる"]  # LINE's 13 quick-reply items
    stay = say(fake, district.chat, "第20地区")
    assert stay.chat.step_data == {"m": "大洲市", "d": "第20地区"}
