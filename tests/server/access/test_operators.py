"""An operator's role and reach, as plain rules."""

from __future__ import annotations

import pytest

from server.access.operators import SYSTEM, Operator
from server.errors import Forbidden, Invalid

HQ = Operator("hq-sato", "hq")
OZU = Operator("ozu-tanaka", "municipality", "大洲市")
VIEWER = Operator("press", "viewer")
OZU_VIEWER = Operator("ozu-desk", "viewer", "大洲市")


def test_roles_and_reach_must_agree() -> None:
    with pytest.raises(Invalid, match="needs its municipality"):
        Operator("x", "municipality")
    with pytest.raises(Invalid, match="give none"):
        Operator("x", "hq", "大洲市")
    assert SYSTEM.everywhere and SYSTEM.writes


def test_a_municipality_reaches_its_own_only() -> None:
    OZU.require_reach("大洲市", "station ozu-01")
    with pytest.raises(Forbidden, match="station uwa-01 is 宇和島市's"):
        OZU.require_reach("宇和島市", "station uwa-01")
    with pytest.raises(Forbidden, match="no municipality's"):
        OZU.require_reach(None, "battery gw/lan.1")
    with pytest.raises(Forbidden, match="everyone's"):
        OZU.require_everywhere("the audit log")
    with pytest.raises(Forbidden, match="HQ's"):
        OZU.require_hq("the operator accounts")
    OZU.require_write()


def test_hq_reaches_everything_and_a_viewer_writes_nothing() -> None:
    for where in ("大洲市", "宇和島市", None):
        HQ.require_reach(where, "it")
        VIEWER.require_reach(where, "it")
    HQ.require_everywhere("the audit log")
    HQ.require_hq("the operator accounts")
    for viewer in (VIEWER, OZU_VIEWER):
        with pytest.raises(Forbidden, match="viewer"):
            viewer.require_write()
    assert OZU_VIEWER.reaches("大洲市") and not OZU_VIEWER.reaches("宇和島市")
