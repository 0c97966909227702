"""The FastAPI example end to end on the fake, delivered to the ASGI app in process."""

from __future__ import annotations

import httpx
import pytest

from cloudtasks_kit import TaskHandler
from cloudtasks_kit.testing import FakeTransport

from . import main


@pytest.fixture
def app(cloudtasks_fake: FakeTransport) -> object:
    client = cloudtasks_fake.async_client()
    cloudtasks_fake.client().queue("thumbnails").create()
    main.tasks.bind(client)
    main.DONE.clear()
    return main.create_app(TaskHandler(main.tasks, certs=cloudtasks_fake.certs()))


async def test_an_upload_makes_one_thumbnail(app: object, cloudtasks_fake: FakeTransport) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as web:
        response = await web.post("/uploads", json={"bucket": "photos", "name": "cat.png"})
    assert response.status_code == 200

    cloudtasks_fake.deliver_to_asgi(app)  # type: ignore[arg-type]
    assert [d.status for d in cloudtasks_fake.run_until_idle()] == [200]
    assert main.DONE == [("photos/cat.png@256", 0)]


async def test_bad_arguments_fail_in_the_request_that_enqueues(app: object) -> None:
    with pytest.raises(Exception, match="width"):
        await main.make_thumbnail.aenqueue({"bucket": "b", "name": "n", "width": "wide"})  # type: ignore[arg-type]
