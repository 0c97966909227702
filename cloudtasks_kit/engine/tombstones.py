"""Name tombstones kept compactly: each a 64-bit key and its expiry, in arrays rather than objects.

A tombstone is left by every finished or deleted task (its name stays taken for about an hour), so an
emulator under load keeps hundreds of thousands of them. As a ``dict[int, float]`` each costs about
120 bytes (an int object, a float object and the dict's slot); here it costs about 40: the keys and
expiries live in ``array`` buckets (a linear-hashing table, grown and shrunk one bucket at a time, so no
call ever pays for rehashing the whole table), and a first-in-first-out pair of arrays holds them in
the order they were buried, which is expiry order, for dropping the expired from its front.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping

__all__ = ["Tombstones"]

_PER_BUCKET = 32
"""Keys per bucket on average: a lookup scans one bucket (in C); fewer means more arrays to pay for."""
_FIRST_BUCKETS = 8


class Tombstones(Mapping[int, float]):
    """Keys (a name's :func:`~cloudtasks_kit.engine.state.tombstone_key`) each with an expiry, as a
    read-only mapping ``key -> expiry``; :meth:`add` and :meth:`forget_expired` change it.

    Expiry order is the order of :meth:`add` (each kind of tombstone has one window): an expired key is
    kept until :meth:`forget_expired` reaches it, as in a dict expired from its front, and
    :meth:`expiry` always gives its own expiry, so callers compare with now. A key added again keeps its
    place in the table with the new expiry; its earlier place in the order is skipped when reached.
    """

    __slots__ = ("_count", "_exps", "_fifo_exps", "_fifo_keys", "_head", "_keys", "_level", "_most", "_split")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every key."""
        self._keys: list[array[int]] = [array("q") for _ in range(_FIRST_BUCKETS)]
        self._exps: list[array[float]] = [array("d") for _ in range(_FIRST_BUCKETS)]
        self._level = _FIRST_BUCKETS  # buckets below _split are split: they use one more bit of the key
        self._split = 0
        self._count = 0
        self._most = _FIRST_BUCKETS * _PER_BUCKET  # more than this: one more bucket
        self._fifo_keys: array[int] = array("q")
        self._fifo_exps: array[float] = array("d")
        self._head = 0  # the FIFO's live part starts here; compacted once it is the smaller half

    def _bucket(self, key: int) -> int:
        index = key & (self._level - 1)
        if index < self._split:
            index = key & (2 * self._level - 1)
        return index

    # Reading.

    def expiry(self, key: int) -> float | None:
        """When ``key``'s tombstone expires (it may have already: compare with now), or None."""
        index = self._bucket(key)
        keys = self._keys[index]
        if key not in keys:
            return None
        return self._exps[index][keys.index(key)]

    def get(self, key: int, default: float | None = None) -> float | None:  # type: ignore[override]
        found = self.expiry(key)
        return default if found is None else found

    def __getitem__(self, key: int) -> float:
        found = self.expiry(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and self.expiry(key) is not None

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        for keys in list(self._keys):
            yield from array("q", keys)

    def __repr__(self) -> str:
        return f"Tombstones({self._count} kept in {len(self._keys)} buckets)"

    # Changing.

    def add(self, key: int, expiry: float) -> None:
        """Keep ``key`` until ``expiry`` (a later expiry than every key added before it)."""
        level = self._level  # self._bucket(key), inline: this runs for every finished task
        index = key & (level - 1)
        if index < self._split:
            index = key & (2 * level - 1)
        keys = self._keys[index]
        if key in keys:
            self._exps[index][keys.index(key)] = expiry
        else:
            keys.append(key)
            self._exps[index].append(expiry)
            self._count += 1
            if self._count > self._most:
                self._grow()
        self._fifo_keys.append(key)
        self._fifo_exps.append(expiry)

    def forget_expired(self, now: float) -> None:
        """Drop the keys expired at ``now``, from the front of the order they were added in."""
        fifo_keys, fifo_exps, head = self._fifo_keys, self._fifo_exps, self._head
        end = len(fifo_exps)
        if head == end or fifo_exps[head] > now:
            return
        while head < end and fifo_exps[head] <= now:
            self._discard(fifo_keys[head], fifo_exps[head])
            head += 1
        if head * 2 >= end:  # amortised O(1): the part moved is smaller than the part dropped
            del fifo_keys[:head]
            del fifo_exps[:head]
            head = 0
        self._head = head

    def _discard(self, key: int, expiry: float) -> None:
        """Forget ``key`` if it still expires at ``expiry`` (not if it was added again since)."""
        index = self._bucket(key)
        keys, exps = self._keys[index], self._exps[index]
        try:
            at = keys.index(key)
        except ValueError:
            return
        if exps[at] != expiry:
            return
        last = len(keys) - 1  # swap with the last: order within a bucket does not matter
        keys[at], exps[at] = keys[last], exps[last]
        del keys[last]
        del exps[last]
        self._count -= 1
        if self._count * 4 < self._most and len(self._keys) > _FIRST_BUCKETS:
            self._shrink()

    # Linear hashing: one bucket split or merged at a time.

    def _grow(self) -> None:
        """Split bucket ``_split`` in two by the next bit of its keys; the new bucket goes at the end."""
        old, bit = self._split, self._level
        kept_keys, kept_exps = array("q"), array("d")
        moved_keys, moved_exps = array("q"), array("d")
        for key, expiry in zip(self._keys[old], self._exps[old], strict=True):
            if key & bit:
                moved_keys.append(key)
                moved_exps.append(expiry)
            else:
                kept_keys.append(key)
                kept_exps.append(expiry)
        self._keys[old], self._exps[old] = kept_keys, kept_exps
        self._keys.append(moved_keys)
        self._exps.append(moved_exps)
        self._split += 1
        if self._split == self._level:
            self._level *= 2
            self._split = 0
        self._most = len(self._keys) * _PER_BUCKET

    def _shrink(self) -> None:
        """Merge the last bucket back into the one it was split from (the reverse of :meth:`_grow`)."""
        if self._split == 0:
            self._level //= 2
            self._split = self._level
        self._split -= 1
        self._most = (len(self._keys) - 1) * _PER_BUCKET
        self._keys[self._split].extend(self._keys.pop())
        self._exps[self._split].extend(self._exps.pop())
