"""Registering a district and situation, each handler with the fake desk: consent first,
then municipality, district, stay and need; shown, changed and deleted, in both languages."""

from __future__ import annotations

from server.line import conversation as talk
from server.line import registration as reg
from server.line.conversation import Chat, Registration, Reply
from server.line.events import Kind
from server.line.routes import intent_of
from tests.server.line.test_conversation import T0, A, D, FakeDesk, run, shown

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


def to_stay(fake: FakeDesk, chat: Chat, words: tuple[str, ...]) -> Reply:
    """The answers up to where the resident stays, each in its turn."""
    reply = say(fake, chat, words[0])
    for word in words[1:]:
        reply = say(fake, reply.chat, word)
    return reply


def test_at_a_shelter_the_resident_picks_which_shown_and_deleted_with_the_rest() -> None:
    fake = desk()
    shelter = to_stay(fake, Chat("U1"), ("登録", "はい", "大洲市", "肱南", "避難所"))
    assert shelter.chat.step == reg.STEP_SHELTER
    assert "どの避難所ですか" in shelter.messages[0]["text"]
    assert answers(shelter) == ["避難所A", "避難所B", "一覧にない", "やめる"]
    unknown = say(fake, shelter.chat, "どこかの避難所")
    assert "「どこかの避難所」は選べませんでした" in unknown.messages[0]["text"]
    assert unknown.chat.step == reg.STEP_SHELTER and answers(unknown) == answers(shelter)
    need = say(fake, shelter.chat, "避難所B")
    assert need.chat.step == reg.STEP_NEED and need.chat.step_data["st"] == "b-01"
    assert fake.registrations == {}  # nothing before the last answer
    done = say(fake, need.chat, "特になし")
    assert fake.registrations == {"U1": Registration("U1", "大洲市", "肱南", "shelter", None,
                                                     "b-01")}  # fmt: skip
    assert "滞在先：避難所（避難所B）" in done.messages[1]["text"]
    assert "滞在先：避難所（避難所B）" in say(fake, done.chat, "登録確認").messages[0]["text"]
    assert "削除しました" in say(fake, done.chat, "登録削除").messages[0]["text"]
    assert fake.registrations == {}


def test_in_english_a_typed_shelter_name_or_not_listed_and_a_change_of_stay_drops_it() -> None:
    fake = desk()
    en = Chat("U1", language="en")
    shelter = to_stay(fake, en, ("register", "yes", "大洲市", "大洲", "Shelter"))
    assert "Which shelter?" in shelter.messages[0]["text"]
    assert answers(shelter)[-2:] == ["Not listed", "Stop"]
    typed = say(fake, shelter.chat, "shelter a")  # typed, in lower case
    say(fake, typed.chat, "None")
    assert fake.registrations["U1"].station_id == "a-01"
    shown = say(fake, en, "my registration").messages[0]["text"]
    assert "Staying: Shelter (Shelter A)" in shown
    unlisted = to_stay(fake, en, ("register", "yes", "大洲市", "大洲", "Shelter", "Not listed"))
    say(fake, unlisted.chat, "None")
    assert fake.registrations["U1"] == Registration("U1", "大洲市", "大洲", "shelter")
    assert "Staying: Shelter\n" in say(fake, en, "my registration").messages[0]["text"]
    home = to_stay(fake, en, ("register", "yes", "内子町", "home", "None"))
    assert home.chat.step is None
    assert fake.registrations["U1"] == Registration("U1", "内子町", None, "home")


def test_after_a_station_poster_a_shelter_registration_takes_its_shelter() -> None:
    fake = FakeDesk(free={(A.id, T0): 1}, district_lists={"大洲市": OZU})
    poster = run(talk.on_poster, fake, Chat("U1"), params={"station": A.id})
    assert poster.chat.step_data == {talk.POSTER_SEEN: A.id}
    window = {"a": "book", "s": A.id, "w": T0.isoformat()}
    booked = run(talk.on_book, fake, poster.chat, kind=Kind.POSTBACK, params=window)
    assert "C0DE" in shown(booked) and booked.chat.step_data == {talk.POSTER_SEEN: A.id}
    need = to_stay(fake, booked.chat, ("登録", "はい", "大洲市", "菅田", "避難所"))
    assert need.chat.step == reg.STEP_NEED  # not asked which shelter: the poster's
    done = say(fake, need.chat, "介護が必要")
    assert fake.registrations["U1"] == Registration("U1", "大洲市", "菅田", "shelter", "care",
                                                    A.id)  # fmt: skip
    assert "避難所（避難所A）" in done.messages[1]["text"] and done.chat.step_data == {}
    home = to_stay(fake, poster.chat, ("登録", "はい", "大洲市", "菅田", "車中", "特になし"))
    assert home.chat.step is None
    assert fake.registrations["U1"] == Registration("U1", "大洲市", "菅田", "car")
    forgot = say(fake, booked.chat, "登録削除")
    assert fake.registrations == {} and forgot.chat.step_data == {}
    drill = Chat("U1", step_data={talk.POSTER_SEEN: D.id})  # a drill's twin is no shelter
    asked = to_stay(fake, drill, ("登録", "はい", "大洲市", "菅田", "避難所"))
    assert asked.chat.step == reg.STEP_SHELTER
