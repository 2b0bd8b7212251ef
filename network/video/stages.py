"""Overlapping the stages of a conversion: decoding runs ahead in one thread and encoding runs
behind in another, each through a small bounded queue, while the network works in the
caller's thread. PyAV and torch release the GIL in their heavy calls, so the stages run at
once; the queues keep memory to a few frames.

An exception in a background thread is raised again in the caller's thread; an exception in
the caller's thread stops both background threads before it propagates (so, e.g., a writer
is never closed while its thread is still encoding).
"""
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

QUEUE_SIZE = 4  # items waiting between two stages
_END = object()


class _Stage:
    def __init__(self, size: int):
        self._queue: queue.Queue = queue.Queue(size)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        # Set by the thread as it ends. Waited on instead of Thread.join, which Ctrl-C can
        # interrupt in a way that leaves the thread marked as ended while it runs on.
        self._ended = threading.Event()

    def _start(self, target: Callable[[], None], name: str) -> None:
        def run() -> None:
            try:
                target()
            finally:
                self._ended.set()
        threading.Thread(target=run, name=name, daemon=True).start()

    def _put(self, item: Any) -> bool:
        """Queue `item`, waiting while the queue is full; False once the stage is stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def stop(self) -> None:
        """Make the background thread finish its current item and end; wait for it."""
        self._stop.set()
        self._ended.wait()


class ReadAhead(_Stage):
    """Iterate `items` in a background thread, at most `size` items ahead of the caller."""

    def __init__(self, items: Iterable, size: int = QUEUE_SIZE, name: str = "read-ahead"):
        super().__init__(size)
        self._items = items
        self._start(self._run, name)

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as error:  # handed to the caller's thread
            self._error = error
        self._put(_END)

    def __iter__(self) -> Iterator:
        while (item := self._queue.get()) is not _END:
            yield item
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "ReadAhead":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


class WriteBehind(_Stage):
    """Call `consume(item)` in a background thread for each `put` item, in order, with at most
    `size` items waiting. `close` waits for the last one."""

    def __init__(self, consume: Callable[[Any], None], size: int = QUEUE_SIZE,
                 name: str = "write-behind"):
        super().__init__(size)
        self._consume = consume
        self._start(self._run, name)

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self._error is None and not self._stop.is_set():
                try:
                    self._consume(item)
                except BaseException as error:  # handed to the caller's thread
                    self._error = error
                    self._stop.set()

    def put(self, item: Any) -> None:
        if not self._put(item) and self._error is not None:
            raise self._error

    def close(self) -> None:
        """Wait until every item is consumed; raise what consuming raised. Interrupted while
        waiting (Ctrl-C), stop after the item in hand, so that nothing the thread consumes
        into (a writer) is closed under it."""
        self._queue.put(_END)
        try:
            self._ended.wait()
        except BaseException:
            self._stop.set()
            self._ended.wait()
            raise
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "WriteBehind":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self._stop.set()
            self._queue.put(_END)
            self._ended.wait()
