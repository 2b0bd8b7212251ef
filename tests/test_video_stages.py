"""network.video.stages: order, bounded queues, errors handed across threads, clean stops."""
import itertools
import os
import signal
import threading

import pytest

from network.video.stages import ReadAhead, WriteBehind


def test_read_ahead_keeps_order_and_raises_the_producers_error_after_its_items():
    def items():
        yield from range(10)
        raise ValueError("damaged at 10")

    seen = []
    with pytest.raises(ValueError, match="damaged at 10"), ReadAhead(items(), size=2) as ahead:
        for item in ahead:
            seen.append(item)
    assert seen == list(range(10))


def test_read_ahead_stops_an_endless_producer_when_left_early():
    produced = []

    def endless():
        for n in itertools.count():
            produced.append(n)
            yield n

    with ReadAhead(endless(), size=3) as ahead:
        first = list(itertools.islice(ahead, 5))
    assert first == [0, 1, 2, 3, 4]
    assert ahead._ended.is_set()
    assert len(produced) <= 5 + 3 + 2  # taken, queued, and at most one in hand plus one


def test_write_behind_consumes_in_order_and_close_waits_for_all():
    consumed = []
    with WriteBehind(consumed.append, size=2) as behind:
        for n in range(20):
            behind.put(n)
    assert consumed == list(range(20))


def test_write_behind_error_reaches_the_caller_and_later_items_are_dropped():
    consumed = []

    def consume(n):
        if n == 3:
            raise OSError("disk full")
        consumed.append(n)

    with pytest.raises(OSError, match="disk full"), WriteBehind(consume, size=1) as behind:
        for n in range(100):
            behind.put(n)
    assert consumed == [0, 1, 2]


def test_write_behind_stops_when_the_caller_fails():
    consumed = []
    with pytest.raises(KeyboardInterrupt), WriteBehind(consumed.append, size=50) as behind:
        behind.put(1)
        raise KeyboardInterrupt
    assert behind._ended.is_set()
    assert consumed in ([], [1])


def test_ctrl_c_while_closing_stops_the_thread_before_it_propagates():
    """SIGINT arrives while close waits for the last items: the item in hand is finished, the
    others dropped, and the thread has ended when KeyboardInterrupt leaves close (before it,
    the thread went on encoding into a writer the caller was closing)."""
    started, release, consumed = threading.Event(), threading.Event(), []

    def consume(item):
        started.set()
        release.wait(10)
        consumed.append(item)

    stage = WriteBehind(consume)
    for item in range(3):
        stage.put(item)
    assert started.wait(10)
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    threading.Timer(1.0, release.set).start()
    with pytest.raises(KeyboardInterrupt):
        stage.close()
    assert stage._ended.is_set() and consumed == [0]
