"""One LINE sandbox process for this package's tests (starting one takes seconds here),
reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sandboxes import Sandbox


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    started = Sandbox(tmp_path_factory.mktemp("sandbox"))
    yield started
    started.stop()


@pytest.fixture
def sandbox(shared_sandbox: Sandbox) -> Sandbox:
    """The module's sandbox with nothing delivered and no fault queued."""
    shared_sandbox.reset()
    return shared_sandbox
