"""The fast path waits until Faust's conductor routes a partition to a live stream."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP

from streamlearn.streams.routing import routed

T0, T1 = TP("t-transactions", 0), TP("t-transactions", 1)
O0 = TP("t-outcomes", 0)


class Conductor:
    """What routing reads of Faust's conductor: the index, the registered streams."""

    def __init__(self) -> None:
        self._tp_index: defaultdict[TP, set] = defaultdict(set)
        self._topics: set = set()
        self.rebuilt = 0

    def _update_callback_map(self) -> None:
        self.rebuilt += 1


class Stream(SimpleNamespace):
    """A registered channel: an actor's stream (its partitions) or a shared one (None)."""

    __hash__ = object.__hash__
    __eq__ = object.__eq__


def actor_stream(*tps: TP) -> Stream:
    return Stream(active_partitions=set(tps), topics=("t-transactions",))


def test_a_partition_whose_new_actor_is_not_yet_registered_is_not_routed() -> None:
    c = Conductor()
    old, outcomes = (
        actor_stream(T0),
        Stream(active_partitions=None, topics=("t-outcomes",)),
    )
    c._topics |= {outcomes}
    c._tp_index[T0].add(old)  # the stopped actor's stream, left in the index
    assert not routed(c, T0, {T0, O0})
    assert c.rebuilt == 1 and T0 not in c._tp_index and c._tp_index[O0] == {outcomes}
    new = actor_stream(T0)
    c._topics.add(new)  # the new actor starts iterating
    assert routed(c, T0, {T0, O0}) and c._tp_index[T0] == {new}
    assert routed(c, T0, {T0, O0}) and c.rebuilt == 2  # routed: nothing rebuilt


def test_streams_of_partitions_not_assigned_are_left_out() -> None:
    c = Conductor()
    gone, kept = actor_stream(T1), actor_stream(T0)
    c._topics |= {gone, kept}
    assert routed(c, T0, {T0})
    assert T1 not in c._tp_index
