"""A byte ring in shared memory that carries packed episodes from the simulation process to the writing process.

Why not the pipe: an episode of 50 keys and 100 steps is about 100 kB, more than a pipe holds (64 kB), so piping it
takes several ``write`` calls, and the thread making them must take the GIL back after each one; the simulation
loop holds the GIL most of the time, so the writing process waited for data while the loop waited for free slots
(measured: the writing process idle 57 % of the time with 32 episodes queued). Copying an episode into shared
memory is one ``memcpy`` per array in the caller's thread; only a few bytes naming where it lies go through the pipe.

Records are laid out back to back; a record that does not fit before the end of the buffer starts at offset 0 and
the tail it skips counts as used. The producer (the caller) advances ``produced``; the consumer (the writing
process) copies each record out in order and advances the shared ``consumed`` counter, so
``produced - consumed`` bytes are in use, at most ``capacity``.
"""

from __future__ import annotations

import os
import struct
from multiprocessing import shared_memory
from typing import Any

RECORD = struct.Struct("<qqq")
"""A record's place in the ring as piped: offset [bytes], size [bytes], skipped tail before it [bytes]."""


class RingWriter:
    """The producer's side: creates the shared buffer and reserves space for records.

    Args:
        capacity: size of the shared buffer [bytes].
        consumed: a shared 64-bit integer (``multiprocessing.Value("q")``) the consumer advances.
    """

    def __init__(self, capacity: int, consumed: Any) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 byte, got {capacity}")
        self.capacity = capacity
        self.memory = shared_memory.SharedMemory(create=True, size=capacity)
        """The shared buffer; its ``name`` is what the consumer attaches to."""
        try:
            _allocate(self.memory, capacity)
        except OSError:
            self.close()
            raise
        self._consumed = consumed
        self._produced = 0

    def reserve(self, size: int) -> tuple[memoryview, bytes] | None:
        """Space for a record of ``size`` bytes, as (a writable view of it, the record to pipe), or None while the
        consumer has not yet released enough. ``size`` must be at most :attr:`capacity`."""
        in_use = self._produced - self._consumed.value
        head = self._produced % self.capacity
        skip = self.capacity - head if head + size > self.capacity else 0
        # an empty ring takes any record that fits in it, even if the skipped tail and the record add up to more
        if in_use and in_use + skip + size > self.capacity:
            return None
        offset = 0 if skip else head
        self._produced += skip + size
        return self.memory.buf[offset : offset + size], RECORD.pack(offset, size, skip)

    def close(self) -> None:
        """Release and delete the shared buffer (after the consumer is gone)."""
        self.memory.close()
        self.memory.unlink()


def _allocate(memory: shared_memory.SharedMemory, capacity: int) -> None:
    """Back every page of ``memory`` now: a shared-memory file system (``/dev/shm``) too small for it then raises
    OSError here, instead of killing the process with SIGBUS at the first write past its end (Docker's default
    ``/dev/shm`` is 64 MB)."""
    if hasattr(os, "posix_fallocate"):  # Linux; elsewhere the buffer is allocated by the mapping itself
        os.posix_fallocate(memory._fd, 0, capacity)


class RingReader:
    """The consumer's side: attaches to the producer's buffer by name and copies records out in order.

    Args:
        name: the producer's :attr:`RingWriter.memory` name.
        consumed: the shared counter given to the producer.
    """

    def __init__(self, name: str, consumed: Any) -> None:
        self.memory = shared_memory.SharedMemory(name=name)
        self._consumed = consumed

    def take(self, record: bytes | memoryview) -> bytes:
        """A copy of the record's bytes; its space is released to the producer at once. Copying (about 10 us for
        100 kB) keeps no view of the shared buffer alive, so it can always be closed."""
        offset, size, skip = RECORD.unpack(record)
        payload = bytes(self.memory.buf[offset : offset + size])
        with self._consumed.get_lock():
            self._consumed.value += skip + size
        return payload

    def close(self) -> None:
        """Detach from the shared buffer (the producer deletes it)."""
        self.memory.close()
