"""What residents read on LINE: the texts in Japanese and English, and the message builders.

Everything here is pure: plain data in, LINE message objects (dicts, as the Messaging API
takes them) out, so the conversation, the notices and the tests share one rendering and the
platform's limits are kept in one place: at most 13 quick-reply items, postback data of at
most 300 characters (`postback_data` refuses longer), a carousel of at most 12 bubbles, a
bubble far below 30 KB. Times are the stations' local time (`settings.timezone`), 24-hour,
with the date: "12/3 13:30〜14:00".

Postback actions (`Postback`) are encoded here, beside the buttons that carry them, and
decoded here (`read_postback`); `server.line.routes` maps each to its handler.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from server.booking.ranking import Option, minutes_to_metres
from server.booking.views import BookingView
from server.line.stations import StationInfo

DEFAULT_LANGUAGE: Final = "ja"
MAX_QUICK_REPLIES: Final = 13
MAX_POSTBACK_DATA: Final = 300
MAX_CAROUSEL: Final = 12
MAX_ALT_TEXT: Final = 400
MAX_TEXT: Final = 5000

Message = dict[str, Any]
"""A LINE message object as the Messaging API takes it."""


class Postback(StrEnum):
    """What a button asks for; the `a` parameter of its postback data."""

    BOOK = "book"
    """Book window `w` (ISO time) at station `s`, `m` metres' walk away (the option's)."""
    CHANGE = "change"
    """Give up booking `b` for window `w` at station `s`."""
    CANCEL = "cancel"
    """Cancel the active booking."""
    CHARGE = "charge"
    """Start over: ask for a location."""
    STATUS = "status"
    LANGUAGE = "lang"
    """Switch to language `l`."""


@dataclass(frozen=True, slots=True)
class PostbackRequest:
    """A decoded postback: its action and parameters."""

    action: Postback
    params: Mapping[str, str]


def postback_data(action: Postback, **params: str) -> str:
    """Postback data for an action; ValueError beyond LINE's 300 characters."""
    data = urlencode({"a": action.value, **params})
    if len(data) > MAX_POSTBACK_DATA:
        raise ValueError(f"postback data of {len(data)} characters (LINE takes 300)")
    return data


def read_postback(data: str) -> PostbackRequest | None:
    """The request a postback's data encodes, or None for data we never wrote."""
    params = dict(parse_qsl(data, keep_blank_values=True))
    try:
        action = Postback(params.pop("a", ""))
    except ValueError:
        return None
    return PostbackRequest(action, params)


TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "greeting": {
        "ja": "友だち追加ありがとうございます。ここでスマートフォンの充電を予約できます。\n"
        "・「充電」と送ると、近くの充電ステーションの空き枠をお知らせします\n"
        "・「予約確認」で予約の確認、「キャンセル」で取り消し\n"
        "・「登録」で地区と滞在先を登録すると、支援のお知らせが届きます（「登録削除」で削除）\n"
        "・For English, send “English”.",
        "en": "Thanks for adding us! You can book a phone charging slot here.\n"
        "・Send “charge” to see free windows at charging stations near you\n"
        "・“status” shows your booking, “cancel” cancels it\n"
        "・“register” your district and where you stay to get support news (“delete "
        "registration” deletes it)\n"
        "・日本語の案内は「日本語」と送ってください。",
    },
    "ask_location": {
        "ja": "現在地を送ってください（下の「位置情報を送る」）。"
        "駅名や地名、ステーションの名前を入力しても探せます。",
        "en": "Please send your location (“Send location” below), or type a station or place name.",
    },
    "location_again": {
        "ja": "位置情報を受け取れませんでした。もう一度、現在地を送ってください。",
        "en": "We could not use your location. Please send it once more.",
    },
    "options": {
        "ja": "空いている枠です。「予約する」を押すと予約できます。",
        "en": "Free windows. Tap “Book” to book one.",
    },
    "no_options": {
        "ja": "近くに空いている枠がありませんでした。少し時間をおいてもう一度お試しください。",
        "en": "There is no free window nearby right now. Please try again a little later.",
    },
    "station_no_options": {
        "ja": "{station}には今、空いている枠がありません。近くのステーションを探すには"
        "現在地を送ってください。",
        "en": "{station} has no free window right now. Send your location to see stations nearby.",
    },
    "place_unknown": {
        "ja": "「{query}」に当たるステーションが見つかりませんでした。"
        "現在地を送るか、別の名前でお試しください。",
        "en": "No station matches “{query}”. Send your location or try another name.",
    },
    "booked": {
        "ja": "予約しました。ステーションでこのチケットのコードを見せてください。",
        "en": "Booked. Show the code on this ticket at the station.",
    },
    "already_booked": {
        "ja": "すでに予約があります（お一人1件まで）。こちらの予約です。",
        "en": "You already have a booking (one per person). Here it is.",
    },
    "offer_change": {
        "ja": "{station} {window} に変更しますか？",
        "en": "Change it to {station} {window}?",
    },
    "changed": {
        "ja": "予約を変更しました。",
        "en": "Your booking is changed.",
    },
    "window_full": {
        "ja": "申し訳ありません、その枠は埋まってしまいました。ほかの枠をお選びください。",
        "en": "Sorry, that window has just filled up. Please choose another.",
    },
    "window_gone": {
        "ja": "その枠は締め切られました。いま空いている枠です。",
        "en": "That window has closed. These are free now.",
    },
    "status_none": {
        "ja": "いま予約はありません。「充電」と送ると予約できます。",
        "en": "You have no booking. Send “charge” to book one.",
    },
    "status": {
        "ja": "ご予約の内容です。",
        "en": "Your booking:",
    },
    "cancelled": {
        "ja": "予約を取り消しました（{station} {window}）。",
        "en": "Your booking is cancelled ({station} {window}).",
    },
    "cancel_none": {
        "ja": "取り消す予約はありません。",
        "en": "You have no booking to cancel.",
    },
    "cancel_not_now": {
        "ja": "この予約はもう取り消せません（{status}）。",
        "en": "This booking can no longer be cancelled ({status}).",
    },
    "language_set": {
        "ja": "これから日本語でご案内します。",
        "en": "From now on I will answer in English.",
    },
    "hint_media": {
        "ja": "ありがとうございます。充電の予約は「充電」と送ってください。",
        "en": "Thank you! To book a charge, send “charge”.",
    },
    "hint": {
        "ja": "すみません、わかりませんでした。「充電」で予約、「予約確認」で確認、"
        "「キャンセル」で取り消しができます。",
        "en": "Sorry, I did not understand. Send “charge” to book, “status” to see your "
        "booking, “cancel” to cancel it.",
    },
    "drill_joined": {
        "ja": "訓練に参加します。訓練中は【訓練】と付いた避難所を「訓練」と送って予約でき、"
        "訓練のお知らせも届きます。やめるときは「訓練不参加」と送ってください。",
        "en": "You are taking part in drills. While one runs, send “drill” to book a "
        "[DRILL] station; drill messages will reach you. Send “leave drill” to stop.",
    },
    "drill_left": {
        "ja": "訓練への参加をやめました。訓練のお知らせは届きません。",
        "en": "You no longer take part in drills; no drill message will reach you.",
    },
    "drill_not_joined": {
        "ja": "【訓練】の避難所は訓練の参加者だけが予約できます。参加するには「訓練参加」と"
        "送ってください。",
        "en": "Only drill participants can book a [DRILL] station. Send “join drill” to take part.",
    },
    "drill_none": {
        "ja": "いま行われている訓練はありません。",
        "en": "No drill is running now.",
    },
    "register_consent": {
        "ja": "地区ごとの支援のお知らせを受け取るための登録です。保存するのは、市町村・地区・"
        "いまの滞在先（避難所ならどの避難所か・自宅・親類や知人の家・車中）と、"
        "希望があれば電源が必要な医療機器や介護が必要かどうかだけです。お名前や位置情報は保存せず、公開もしません。"
        "「登録削除」と送れば、いつでもすぐに消えます。登録しますか？",
        "en": "This registration lets us send you support news for your district. We keep only "
        "your municipality, district, where you are staying (which shelter, home, "
        "relatives or friends, car) and, if you wish, whether you use a powered medical "
        "device or need care. No name, no location, never made public. Send “delete "
        "registration” at any time and it is deleted at once. Register?",
    },
    "register_declined": {
        "ja": "登録しませんでした。何も保存していません。",
        "en": "Not registered; nothing was stored.",
    },
    "register_stopped": {
        "ja": "登録をやめました。今回の回答は保存していません。",
        "en": "Registration stopped; nothing of these answers was stored.",
    },
    "ask_municipality": {
        "ja": "お住まいの市町村を選んでください（一覧にないときは名前を入力してください）。",
        "en": "Which municipality do you live in? (Type its name if it is not listed.)",
    },
    "ask_district": {
        "ja": "{municipality}のどの地区ですか（一覧にないときは名前を入力してください）。",
        "en": "Which district of {municipality}? (Type its name if it is not listed.)",
    },
    "ask_stay": {
        "ja": "いまどこに滞在していますか。",
        "en": "Where are you staying now?",
    },
    "ask_shelter": {
        "ja": "どの避難所ですか（一覧にないときは名前を入力してください）。",
        "en": "Which shelter? (Type its name if it is not listed.)",
    },
    "ask_need": {
        "ja": "電源が必要な医療機器（在宅酸素・人工呼吸器など）を使っている、または介護が必要"
        "ですか。希望として受け付け、職員が確認します（優先が決まるわけではありません）。",
        "en": "Do you use a powered medical device (home oxygen, a ventilator ...) or need "
        "care? We take it as a request for staff to confirm; it does not grant priority.",
    },
    "not_a_choice": {
        "ja": "「{answer}」は選べませんでした。下から選んでください。",
        "en": "“{answer}” is not one of the choices. Please pick one below.",
    },
    "registered": {
        "ja": "登録しました。",
        "en": "You are registered.",
    },
    "registration": {
        "ja": "ご登録の内容です。\n市町村：{municipality}\n地区：{district}\n滞在先：{stay}\n"
        "医療機器・介護：{need}\n変更は「登録」、削除は「登録削除」と送ってください。",
        "en": "Your registration:\nMunicipality: {municipality}\nDistrict: {district}\n"
        "Staying: {stay}\nMedical device or care: {need}\nSend “register” to change it, "
        "“delete registration” to delete it.",
    },
    "registration_reference": {
        "ja": "受付番号：{reference}（優先の確認のとき窓口で見せてください）",
        "en": "Reference: {reference} (show it at the desk to have priority confirmed)",
    },
    "registration_none": {
        "ja": "登録はありません。「登録」と送ると登録できます。",
        "en": "You are not registered. Send “register” to register.",
    },
    "unregistered": {
        "ja": "登録を削除しました。保存していた内容はもうありません。",
        "en": "Your registration is deleted; nothing of it is kept.",
    },
    "slow_down": {
        "ja": "メッセージが続いています。少し時間をおいてから、もう一度送ってください。",
        "en": "That is a lot of messages. Please wait a minute, then try again.",
    },
    "trouble": {
        "ja": "申し訳ありません、いま処理できませんでした。少ししてからもう一度お試しください。",
        "en": "Sorry, something went wrong on our side. Please try again shortly.",
    },
    "notice_moved": {
        "ja": "{origin}の充電ポートが使えなくなったため、ご予約を{station} {start}〜{end}に"
        "移しました。新しいコードは {code} です。",
        "en": "A charging port at {origin} stopped working, so your booking moved to "
        "{station} {start}–{end}. Your new code is {code}.",
    },
    "notice_restored": {
        "ja": "{station}が復旧したため、ご予約（{start}〜{end}）を元に戻しました。"
        "コードは {code} です。",
        "en": "{station} is back, so your booking ({start}–{end}) is restored. "
        "Your code is {code}.",
    },
    "notice_cancelled": {
        "ja": "申し訳ありません。{origin}（{lost_start}〜）が使えなくなり、ご予約を"
        "取り消しました。",
        "en": "We are sorry: {origin} (from {lost_start}) can no longer charge, so your "
        "booking is cancelled.",
    },
    "notice_no_options": {
        "ja": "いま近くに空いている枠がありません。「充電」と送ると、あらためて探せます。",
        "en": "There is no free window nearby right now. Send “charge” to look again.",
    },
    "notice_reminder": {
        "ja": "まもなくご予約の時間です：{station} {start}〜{end}、コード {code}。"
        "充電ケーブルをお持ちください。",
        "en": "Your window starts soon: {station} {start}–{end}, code {code}. "
        "Please bring your charging cable.",
    },
    "notice_checked_in": {
        "ja": "{station}で充電が始まりました。終わるまでそのままお待ちください。",
        "en": "Charging has started at {station}. Leave your phone plugged in until it ends.",
    },
    "notice_thanks": {
        "ja": "充電が終わりました。ご利用ありがとうございました。",
        "en": "Charging is done. Thank you for using the station.",
    },
    "notice_window_over": {
        "ja": "ご予約の時間が終わりました。ポートを次の方のために空けてください。"
        "ご利用ありがとうございました。",
        "en": "Your window is over: please free the port for the next person. Thank you!",
    },
}
"""Every text a resident reads, by key, then language; `{fields}` are filled by `text`."""

LABELS: Final[Mapping[str, Mapping[str, str]]] = {
    "charge": {"ja": "充電予約", "en": "Charge"},
    "status": {"ja": "予約確認", "en": "Status"},
    "cancel": {"ja": "キャンセル", "en": "Cancel"},
    "other_language": {"ja": "English", "en": "日本語"},
    "send_location": {"ja": "位置情報を送る", "en": "Send location"},
    "book": {"ja": "予約する", "en": "Book"},
    "change": {"ja": "この枠に変更", "en": "Change to this"},
    "keep": {"ja": "このまま", "en": "Keep mine"},
    "map": {"ja": "地図", "en": "Map"},
    "walk": {"ja": "徒歩 {minutes}分", "en": "{minutes} min walk"},
    "free": {"ja": "空き {free}", "en": "{free} free"},
    "options_alt": {"ja": "充電の空き枠", "en": "Free charging windows"},
    "ticket": {"ja": "充電予約チケット", "en": "Charging ticket"},
    "code": {"ja": "コード", "en": "Code"},
    "window": {"ja": "時間", "en": "Window"},
    "place": {"ja": "ポート", "en": "Port"},
    "yes": {"ja": "はい", "en": "Yes"},
    "no": {"ja": "いいえ", "en": "No"},
    "stop": {"ja": "やめる", "en": "Stop"},
    "stay_shelter": {"ja": "避難所", "en": "Shelter"},
    "stay_home": {"ja": "自宅", "en": "Home"},
    "stay_relatives": {"ja": "親類・知人の家", "en": "Relatives/friends"},
    "stay_car": {"ja": "車中", "en": "Car"},
    "stay_at": {"ja": "{stay}（{shelter}）", "en": "{stay} ({shelter})"},
    "shelter_unlisted": {"ja": "一覧にない", "en": "Not listed"},
    "need_medical_device": {"ja": "医療機器を使用", "en": "Medical device"},
    "need_care": {"ja": "介護が必要", "en": "Care needs"},
    "need_none": {"ja": "特になし", "en": "None"},
    "no_district": {"ja": "（なし）", "en": "(none)"},
    "bring": {
        "ja": "持ち物：充電ケーブル（お持ちならアダプターも）",
        "en": "Bring: your charging cable (and adapter if you have one)",
    },
}
"""Short labels of buttons and Flex parts (LINE: a quick-reply label is at most 20)."""

CHARGE_WORDS: Final = {"ja": LABELS["charge"]["ja"], "en": "charge"}
"""What the main quick replies send, so that they route like typed words."""
STATUS_WORDS: Final = {"ja": "予約確認", "en": "status"}
CANCEL_WORDS: Final = {"ja": "キャンセル", "en": "cancel"}
LANGUAGE_WORDS: Final = {"ja": "日本語", "en": "English"}


def normalised(text: str) -> str:
    """Full-width to half-width, lower case, outer spaces and a final 。!. dropped: a typed
    word as the routes and the registration's choices compare it."""
    return unicodedata.normalize("NFKC", text).strip().rstrip("。.!！").strip().lower()


def language_of(lang: str | None) -> str:
    """`en` for any `en*` (LINE sends `en`, `en-US`), else `ja`: the languages we speak."""
    return "en" if lang and lang.lower().startswith("en") else DEFAULT_LANGUAGE


def text(key: str, lang: str, **fields: str) -> str:
    """The text `key` in `lang` (Japanese if it has no such language), fields filled in."""
    versions = TEXTS[key]
    return versions.get(lang, versions[DEFAULT_LANGUAGE]).format(**fields)


def label(key: str, lang: str, **fields: str) -> str:
    versions = LABELS[key]
    return versions.get(lang, versions[DEFAULT_LANGUAGE]).format(**fields)


def clock_time(at: datetime, tz: ZoneInfo) -> str:
    """24-hour local time, "13:30"."""
    return at.astimezone(tz).strftime("%H:%M")


def window_label(start: datetime, end: datetime, tz: ZoneInfo, lang: str) -> str:
    """ "12/3 13:30〜14:00" (the date: a window may be tomorrow's)."""
    local = start.astimezone(tz)
    dash = "〜" if lang == "ja" else "–"
    return f"{local.month}/{local.day} {clock_time(start, tz)}{dash}{clock_time(end, tz)}"


def map_url(station: StationInfo) -> str:
    """A map of the station's point, opened by LINE's in-app browser (no API key)."""
    return (
        "https://www.google.com/maps/search/?api=1&query="
        f"{station.latitude:.6f},{station.longitude:.6f}"
    )


# -- messages --------------------------------------------------------------------------------


def text_message(body: str, quick: Sequence[Message] = ()) -> Message:
    """A text message, with quick-reply items if any (at most 13)."""
    message: Message = {"type": "text", "text": body[:MAX_TEXT]}
    if quick:
        if len(quick) > MAX_QUICK_REPLIES:
            raise ValueError(f"{len(quick)} quick-reply items (LINE takes 13)")
        message["quickReply"] = {"items": list(quick)}
    return message


def _quick_text(text_: str, label_: str | None = None) -> Message:
    return {"type": "action", "action": {"type": "message", "label": label_ or text_,
                                         "text": text_}}  # fmt: skip


def menu_items(lang: str) -> list[Message]:
    """The rich-menu-like quick replies: charge, status, cancel, the other language."""
    other = "en" if lang == "ja" else "ja"
    return [
        _quick_text(CHARGE_WORDS[lang], label("charge", lang)),
        _quick_text(STATUS_WORDS[lang], label("status", lang)),
        _quick_text(CANCEL_WORDS[lang], label("cancel", lang)),
        _quick_text(LANGUAGE_WORDS[other], label("other_language", lang)),
    ]


def with_menu(message: Message, lang: str) -> Message:
    """`message` with the menu's quick replies (a copy; other quick replies are replaced)."""
    return {**message, "quickReply": {"items": menu_items(lang)}}


def said(key: str, lang: str, **fields: str) -> Message:
    """The text `key` as a message with the menu: the usual answer."""
    return text_message(text(key, lang, **fields), menu_items(lang))


def choices(body: str, options: Sequence[str]) -> Message:
    """A question with its answers as quick replies that send the answer's words (at most
    13; a label is cut to LINE's 20 characters, the words sent stay whole)."""
    return text_message(body, [_quick_text(o, o[:20]) for o in options[:MAX_QUICK_REPLIES]])


def greeting(lang: str) -> Message:
    """Follow: how to use the account, with the menu."""
    return said("greeting", lang)


def ask_location(lang: str, key: str = "ask_location") -> Message:
    """Ask where the resident is: a location quick reply first, then the menu."""
    location = {"type": "action", "action": {"type": "location",
                                             "label": label("send_location", lang)}}  # fmt: skip
    return text_message(text(key, lang), [location, *menu_items(lang)])


def options_carousel(
    options: Sequence[Option],
    stations: Mapping[str, StationInfo],
    lang: str,
    tz: ZoneInfo,
) -> Message:
    """Ranked options as a Flex carousel, one bubble each (at most 12): station, walking
    minutes, window, free places, a map link and a book button."""
    bubbles = [
        _option_bubble(o, stations[o.station_id], lang, tz)
        for o in options[:MAX_CAROUSEL]
        if o.station_id in stations
    ]
    return {"type": "flex", "altText": label("options_alt", lang),
            "contents": {"type": "carousel", "contents": bubbles}}  # fmt: skip


def _option_bubble(option: Option, station: StationInfo, lang: str, tz: ZoneInfo) -> Message:
    end = option.window_start + timedelta(minutes=station.slot_minutes)
    window = window_label(option.window_start, end, tz, lang)
    data = postback_data(Postback.BOOK, s=station.id, w=option.window_start.isoformat(),
                         m=str(round(minutes_to_metres(option.walk_min))))  # fmt: skip
    button = label("book", lang)
    walk = label("walk", lang, minutes=str(max(1, round(option.walk_min))))
    return {
        "type": "bubble",
        "size": "kilo",
        "body": _box([
            _text(station.name(lang), weight="bold", size="md", wrap=True),
            _text(walk, size="sm", color="#555555"),
            _text(window, size="md", weight="bold"),
            _text(label("free", lang, free=str(option.free)), size="sm", color="#555555"),
        ]),
        "footer": _box([
            _button({"type": "postback", "label": button, "data": data,
                             "displayText": f"{button}: {station.name(lang)} {window}"},
                    style="primary"),
            _button({"type": "uri", "label": label("map", lang), "uri": map_url(station)},
                    style="link"),
        ]),
    }  # fmt: skip


_CREW_PLACE = re.compile(r"battery (\d+) \([^)]*\) port (\d+)")
_RESIDENT_PLACE: Final = {"ja": "電池{0} ポート{1}", "en": "battery {0}, port {1}"}


def resident_place(place: str, lang: str) -> str:
    """The port as a resident reads it: "電池2 ポート3". The crews' form (`port_place`)
    also names the battery's bus address, which is of no use at the shelter."""
    found = _CREW_PLACE.fullmatch(place)
    form = _RESIDENT_PLACE.get(lang, _RESIDENT_PLACE[DEFAULT_LANGUAGE])
    return form.format(*found.groups()) if found else place


def ticket_bubble(booking: BookingView, station: StationInfo, lang: str, tz: ZoneInfo) -> Message:
    """The booking as a ticket (a Flex message of one bubble): code, station, address, map
    link, window, port, what to bring."""
    window = window_label(booking.window_start, booking.window_end, tz, lang)
    rows = [
        _text(label("ticket", lang), size="sm", color="#1DB446", weight="bold"),
        _text(station.name(lang), weight="bold", size="lg", wrap=True),
    ]
    if station.address:
        rows.append(_text(station.address, size="sm", color="#555555", wrap=True))
    rows += [
        _pair(label("code", lang), booking.ticket_code, big=True),
        _pair(label("window", lang), window),
        _pair(label("place", lang), resident_place(booking.place, lang)),
        _text(label("bring", lang), size="sm", wrap=True),
    ]
    map_button = {"type": "uri", "label": label("map", lang), "uri": map_url(station)}
    alt = f"{label('ticket', lang)} {booking.ticket_code} {station.name(lang)} {window}"
    return {
        "type": "flex",
        "altText": alt[:MAX_ALT_TEXT],
        "contents": {
            "type": "bubble",
            "body": _box(rows),
            "footer": _box([_button(map_button, style="link")]),
        },
    }


def ticket_with_menu(
    booking: BookingView, station: StationInfo, lang: str, tz: ZoneInfo
) -> Message:
    """The ticket, with the menu's quick replies (status, cancel are one tap away)."""
    return with_menu(ticket_bubble(booking, station, lang, tz), lang)


def _quick_postback(label_: str, data: str) -> Message:
    return {"type": "action", "action": {"type": "postback", "label": label_, "data": data,
                                         "displayText": label_}}  # fmt: skip


def offer_change(
    booking: BookingView, station: StationInfo, window_start: datetime, lang: str, tz: ZoneInfo
) -> Message:
    """A second booking attempt: move the booking to the window asked for, keep it, or
    cancel it (quick replies under the question)."""
    end = window_start + timedelta(minutes=station.slot_minutes)
    window = window_label(window_start, end, tz, lang)
    question = text("offer_change", lang, station=station.name(lang), window=window)
    change = postback_data(Postback.CHANGE, b=booking.id, s=station.id, w=window_start.isoformat())
    return text_message(question, [
        _quick_postback(label("change", lang), change),
        _quick_postback(label("keep", lang), postback_data(Postback.STATUS)),
        _quick_postback(label("cancel", lang), postback_data(Postback.CANCEL)),
    ])  # fmt: skip


# -- Flex parts ------------------------------------------------------------------------------


def _box(contents: list[Message]) -> Message:
    return {"type": "box", "layout": "vertical", "spacing": "sm", "contents": contents}


def _text(body: str, **style: Any) -> Message:
    return {"type": "text", "text": body or "-", **style}


def _pair(name: str, value: str, *, big: bool = False) -> Message:
    return {
        "type": "box",
        "layout": "baseline",
        "spacing": "sm",
        "contents": [
            _text(name, size="sm", color="#777777", flex=2),
            _text(value, size="xl" if big else "sm", weight="bold" if big else "regular",
                  flex=5, wrap=True),
        ],
    }  # fmt: skip


def _button(action: Message, *, style: str) -> Message:
    return {"type": "button", "style": style, "height": "sm", "action": action}
