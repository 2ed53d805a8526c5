"""The bodies the bot message endpoints accept, with the platform's documented limits.

`POST /bots/{botId}/channels/{channelId}/messages` (and `/users/{userId}/messages`) takes
`{"content": {...}}`: a text (2,000 characters), a button template (text 1,000, 1 to 10
buttons of message, uri or copy actions: postback actions are for carousels, quick replies
and menus), or a flex message; any of them with up to 13 quick replies. Labels are 20
characters, postback data 300 and a message action's postback 1,000. A body outside this is
a 400, as the platform answers, naming each bad field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

Label = Annotated[str, Field(min_length=1, max_length=20)]
I18n = list[dict[str, Any]] | None
"""Per-language variants (`i18nTexts` and the like), passed through unchecked."""


class _Strict(BaseModel):
    """Fields as the platform spells them (`contentText`); anything else is refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)


class MessageAction(_Strict):
    """Posts `text` (else the label) in the talk as the presser; calls back with `postback`."""

    type: Literal["message"]
    label: Label
    text: str | None = Field(default=None, max_length=300)
    postback: str | None = Field(default=None, max_length=1000)
    i18n_labels: I18n = None
    i18n_texts: I18n = None


class PostbackAction(_Strict):
    """Calls back with a postback event carrying `data`."""

    type: Literal["postback"]
    label: Label | None = None
    data: str = Field(min_length=1, max_length=300)
    display_text: str | None = Field(default=None, max_length=300)
    i18n_labels: I18n = None
    i18n_display_texts: I18n = None


class UriAction(_Strict):
    type: Literal["uri"]
    label: Label
    uri: str = Field(min_length=1, max_length=1000, pattern=r"^(https?|tel):")
    i18n_labels: I18n = None


class CopyAction(_Strict):
    type: Literal["copy"]
    label: Label
    copy_text: str = Field(min_length=1, max_length=1000)
    i18n_labels: I18n = None


TemplateAction = Annotated[MessageAction | UriAction | CopyAction, Field(discriminator="type")]
QuickAction = Annotated[
    MessageAction | PostbackAction | UriAction | CopyAction, Field(discriminator="type")
]


class QuickReplyItem(_Strict):
    action: QuickAction
    image_url: str | None = Field(default=None, max_length=1000)


class QuickReply(_Strict):
    items: list[QuickReplyItem] = Field(min_length=1, max_length=13)


class Text(_Strict):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=2000)
    i18n_texts: I18n = None
    quick_reply: QuickReply | None = None


class ButtonTemplate(_Strict):
    type: Literal["button_template"]
    content_text: str = Field(min_length=1, max_length=1000)
    i18n_content_texts: I18n = None
    actions: list[TemplateAction] = Field(min_length=1, max_length=10)
    quick_reply: QuickReply | None = None


class Flex(_Strict):
    type: Literal["flex"]
    alt_text: str = Field(min_length=1, max_length=400)
    contents: dict[str, Any]
    quick_reply: QuickReply | None = None


class SendRequest(_Strict):
    content: Annotated[Text | ButtonTemplate | Flex, Field(discriminator="type")]


_SEND: TypeAdapter[SendRequest] = TypeAdapter(SendRequest)


def problems(body: Any) -> list[str]:
    """What is wrong with a send's body, one line per bad field; empty when it is valid."""
    try:
        _SEND.validate_python(body)
    except ValidationError as error:
        return [
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}"
            for e in error.errors(include_url=False)
        ]
    return []
