"""The vendored Leaflet is the npm package's own files, as its README records them."""

from __future__ import annotations

import hashlib
import re

from server.dashboard.routes import STATIC

LEAFLET = STATIC / "vendor" / "leaflet"


def test_every_vendored_file_matches_the_recorded_hash() -> None:
    recorded = dict(
        (name, digest)
        for digest, name in re.findall(
            r"^([0-9a-f]{64})  (\S+)$", (LEAFLET / "README.md").read_text(), re.M
        )
    )
    assert {"leaflet.js", "leaflet.css", "LICENSE"} <= recorded.keys()
    on_disk = {p.relative_to(LEAFLET).as_posix() for p in LEAFLET.rglob("*") if p.is_file()}
    assert on_disk - {"README.md"} == recorded.keys()
    for name, digest in recorded.items():
        assert hashlib.sha256((LEAFLET / name).read_bytes()).hexdigest() == digest, name
