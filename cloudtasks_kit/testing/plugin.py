"""The pytest plugin (registered through the ``pytest11`` entry point): a fresh fake per test.

Fixtures:
    cloudtasks_fake: a :class:`~cloudtasks_kit.transports.fake.FakeTransport`, strict like the service.
    cloudtasks_client: a :class:`~cloudtasks_kit.CloudTasks` on that fake (project ``test-project``,
        location ``us-central1``).

PYTEST_DONT_REWRITE: pytest imports this for its plugin; there are no asserts to rewrite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported in the fixtures: registering the plugin must cost every pytest run nothing
    from ..client import CloudTasks
    from ..transports.fake import FakeTransport


@pytest.fixture
def cloudtasks_fake() -> FakeTransport:
    """A fresh in-process Cloud Tasks for this test, on virtual time."""
    from ..transports.fake import FakeTransport

    return FakeTransport()


@pytest.fixture
def cloudtasks_client(cloudtasks_fake: FakeTransport) -> Iterator[CloudTasks]:
    """A CloudTasks client on this test's fake."""
    with cloudtasks_fake.client() as client:
        yield client
