"""The shared-memory ring between the caller and the writing process: records come back intact and in order, space
is reserved only where nothing unread lies, and the writer falls back to the pipe for oversized episodes."""

from __future__ import annotations

import multiprocessing

import pytest
from synthetic_episodes import assert_episodes_equal, make_episode, write_dataset

from wam_isaac.data.episode import PackedEpisode
from wam_isaac.data.reader import iter_episodes
from wam_isaac.data.shared_ring import RingReader, RingWriter


@pytest.fixture
def ring():
    consumed = multiprocessing.get_context("spawn").Value("q", 0)
    writer = RingWriter(10, consumed)
    reader = RingReader(writer.memory.name, consumed)
    yield writer, reader
    reader.close()
    writer.close()


def put(writer: RingWriter, payload: bytes) -> bytes | None:
    """Copy ``payload`` into the ring; the record to pipe, or None when there is no room."""
    space = writer.reserve(len(payload))
    if space is None:
        return None
    view, record = space
    with view:
        view[:] = payload
    return record


def test_records_come_back_in_order_and_wrap_around(ring):
    writer, reader = ring
    first, second = put(writer, b"abcd"), put(writer, b"efgh")  # bytes 0-3 and 4-7
    assert put(writer, b"ijk") is None  # 2 bytes left at the end, and 0-3 are unread
    assert reader.take(first) == b"abcd"
    third = put(writer, b"ijk")  # skips the 2-byte tail, lands on 0-2
    assert third is not None and writer.memory.buf[0:3] == b"ijk"
    assert put(writer, b"lm") is None  # 3-7 is not free: 4-7 holds "efgh"
    assert reader.take(second) == b"efgh" and reader.take(third) == b"ijk"


def test_an_empty_ring_takes_any_record_that_fits(ring):
    writer, reader = ring
    reader.take(put(writer, b"1234567"))  # the next record starts at byte 7
    record = put(writer, b"0123456789")  # 3-byte tail skipped + 10 bytes > capacity, but nothing is unread
    assert record is not None and reader.take(record) == b"0123456789"
    assert reader.take(put(writer, b"xy")) == b"xy"


def test_packed_episode_is_the_size_it_says():
    packed = PackedEpisode(make_episode(3, 7))
    buffer = bytearray(packed.nbytes + 5)
    packed.copy_into(memoryview(buffer))
    assert buffer[packed.nbytes :] == bytes(5)


@pytest.mark.parametrize("max_queued_bytes", [600, 1500])
def test_writer_roundtrip_through_a_small_ring_and_the_pipe(tmp_path, max_queued_bytes):
    """Episodes of 1 to 30 steps are 340 to 1650 bytes packed: some wrap around the ring, some are piped."""
    lengths = [1 + (7 * i) % 30 for i in range(40)]
    episodes = write_dataset(
        tmp_path / "d", lengths, episodes_per_shard=16, max_queued_bytes=max_queued_bytes, num_writers=1
    )
    read = list(iter_episodes(tmp_path / "d"))
    assert [episode_id for episode_id, _ in read] == list(range(40))
    for (_, actual), expected in zip(read, episodes, strict=True):
        assert_episodes_equal(actual, expected)
