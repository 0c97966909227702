"""The fake against a small model of the service's naming rules, on random sequences of calls:
ids are taken while a task exists and for the tombstone window after it is deleted."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import cloudtasks_kit as kit
from cloudtasks_kit.transports.fake import FakeTransport

IDS = st.sampled_from(["a", "b", "c", "d"])
WINDOW = timedelta(minutes=10)


class NamingRules(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fake = FakeTransport(limits=kit.Limits(task_tombstone=WINDOW))
        self.queue = self.fake.client(retry_policy=None).queue("q")
        self.queue.create()
        self.queue.pause()
        self.now = 0.0
        self.existing: set[str] = set()
        self.buried: dict[str, float] = {}  # id -> when its name is free again

    def _recent(self, task_id: str) -> bool:
        return self.buried.get(task_id, -1.0) > self.now

    @rule(task_id=IDS)
    def create(self, task_id: str) -> None:
        try:
            self.queue.create_task("https://w.test/x", task_id=task_id)
        except kit.AlreadyExists:
            assert task_id in self.existing or self._recent(task_id)
        else:
            assert task_id not in self.existing and not self._recent(task_id)
            self.existing.add(task_id)

    @rule(task_id=IDS)
    def delete(self, task_id: str) -> None:
        try:
            self.queue.delete_task(task_id)
        except kit.NotFound as exc:
            assert task_id not in self.existing
            assert ("existed recently" in exc.message) == self._recent(task_id)
        else:
            assert task_id in self.existing
            self.existing.remove(task_id)
            self.buried[task_id] = self.now + WINDOW.total_seconds()

    @rule(task_id=IDS)
    def get(self, task_id: str) -> None:
        try:
            task = self.queue.get_task(task_id)
        except kit.NotFound as exc:
            assert task_id not in self.existing
            assert ("existed recently" in exc.message) == self._recent(task_id)
        else:
            assert task.id == task_id and task_id in self.existing

    @rule(minutes=st.integers(1, 15))
    def wait(self, minutes: int) -> None:
        self.fake.clock.advance(timedelta(minutes=minutes))
        self.now += minutes * 60

    @invariant()
    def listing_shows_exactly_the_existing_tasks(self) -> None:
        assert {t.id for t in self.queue.list_tasks()} == self.existing


TestNamingRules = NamingRules.TestCase
TestNamingRules.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
