"""The tombstone store: a compact mapping of name keys to expiry, expired from the front in burial order,
behaving exactly as the dict it replaced (kept here as the model)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudtasks_kit.emulator.persistence import open_data_dir
from cloudtasks_kit.engine.clock import ManualClock
from cloudtasks_kit.engine.state import tombstone_key
from cloudtasks_kit.engine.tombstones import _FIRST_BUCKETS, Tombstones
from cloudtasks_kit.transports.fake import FakeTransport


class DictModel:
    """The former store: a dict in burial order, re-buried keys moved to the back."""

    def __init__(self) -> None:
        self.stones: dict[int, float] = {}

    def forget_expired(self, now: float) -> None:
        while self.stones:
            oldest = next(iter(self.stones))
            if self.stones[oldest] > now:
                break
            del self.stones[oldest]

    def add(self, key: int, expiry: float) -> None:
        self.stones.pop(key, None)
        self.stones[key] = expiry


def test_keys_expire_in_the_order_they_were_added() -> None:
    stones = Tombstones()
    for n in range(10):
        stones.add(n, 100.0 + n)
    stones.forget_expired(104.0)  # 100 to 104 have expired
    assert sorted(stones) == [5, 6, 7, 8, 9]
    assert stones.expiry(4) is None and stones.expiry(5) == 105.0
    assert 4 not in stones and 5 in stones
    stones.forget_expired(1000.0)
    assert len(stones) == 0 and stones == {}


def test_an_expired_key_reads_with_its_own_expiry_until_it_is_forgotten() -> None:
    stones = Tombstones()
    stones.add(7, 10.0)
    assert stones.expiry(7) == 10.0  # the caller compares with now
    stones.forget_expired(9.99)
    assert stones[7] == 10.0
    stones.forget_expired(10.0)
    assert stones.get(7) is None


def test_a_key_added_again_keeps_the_later_expiry() -> None:
    stones = Tombstones()
    stones.add(1, 10.0)
    stones.add(2, 11.0)
    stones.add(1, 20.0)  # its first place in the order is skipped when reached
    assert len(stones) == 2
    stones.forget_expired(15.0)
    assert dict(stones) == {1: 20.0}
    stones.forget_expired(20.0)
    assert dict(stones) == {}


def test_any_64_bit_key() -> None:
    stones = Tombstones()
    keys = [0, -1, 1, 2**63 - 1, -(2**63), tombstone_key("projects/p/locations/l/queues/q/tasks/t")]
    for n, key in enumerate(keys):
        stones.add(key, 100.0 + n)
    assert dict(stones) == {key: 100.0 + n for n, key in enumerate(keys)}


def test_it_grows_and_shrinks_a_bucket_at_a_time() -> None:
    stones = Tombstones()
    keys = [tombstone_key(f"projects/p/locations/l/queues/q/tasks/{n}") for n in range(20_000)]
    for n, key in enumerate(keys):
        stones.add(key, float(n + 1))
    assert len(stones) == 20_000
    assert len(stones._keys) > 20_000 // 32 - 1  # split as it filled
    assert all(stones.expiry(key) == float(n + 1) for n, key in enumerate(keys))
    assert stones.expiry(tombstone_key("never buried")) is None
    for done in range(0, 20_001, 1000):
        stones.forget_expired(float(done))
        assert len(stones) == 20_000 - done
        assert all(stones.expiry(key) == float(n + 1) for n, key in enumerate(keys[done:], done))
    assert len(stones._keys) == _FIRST_BUCKETS  # merged back as it emptied
    assert len(stones._fifo_keys) == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 40), st.floats(0, 5)),
            st.tuples(st.just("forget"), st.integers(0, 0), st.floats(0, 5)),
        ),
        max_size=200,
    )
)
def test_it_behaves_as_the_dict_it_replaced(steps: list[tuple[str, int, float]]) -> None:
    stones, model = Tombstones(), DictModel()
    now = 0.0
    for op, key, step in steps:
        now += step
        if op == "add":  # as ServiceState.bury: expired ones dropped first, one window for all
            for store in (stones, model):
                store.forget_expired(now)
                store.add(key * 0x9E3779B97F4A7C15 % 2**64 - 2**63, now + 10.0)
        else:
            stones.forget_expired(now)
            model.forget_expired(now)
        assert dict(stones) == model.stones
        assert len(stones) == len(model.stones)


def test_the_engine_keeps_names_taken_through_a_restart_in_expiry_order(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    fake = FakeTransport(clock=clock)
    store, _, _ = open_data_dir(fake.engine, tmp_path)
    queue = fake.client("p").queue("q")
    queue.create()
    for n in range(5):
        queue.delete_task(queue.create_task("https://w.test/", task_id=f"t{n}"))
        clock.advance(60)
    store.close()
    fake = FakeTransport(clock=clock)
    store, _, _ = open_data_dir(fake.engine, tmp_path)
    state = fake.engine.state
    prefix = "projects/p/locations/us-central1/queues/q/tasks/"
    assert len(state.task_tombstones) == 5
    clock.advance(3600 - 5 * 60 + 1)  # t0 buried an hour and a second ago, t1 59 minutes and a second
    assert not state.recently(state.task_tombstones, prefix + "t0")
    assert all(state.recently(state.task_tombstones, prefix + f"t{n}") for n in range(1, 5))
    assert len(state.task_tombstones) == 4
    clock.advance(3 * 60)
    assert [state.recently(state.task_tombstones, prefix + f"t{n}") for n in range(5)] == [False] * 4 + [True]
    store.close()
