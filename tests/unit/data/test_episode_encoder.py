"""The low-level episode encoder writes what h5py's high-level ``create_dataset`` writes: same paths, types, shapes,
chunks, filters (and their order), fill values, no timestamps, same attributes."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from synthetic_episodes import make_episode

from wam_isaac.data import shards
from wam_isaac.data.episode import Episode
from wam_isaac.data.shards import RESERVED_ATTRS, EpisodeEncoder, demo_name, read_episode


def write_high_level(data: h5py.Group, episode_id: int, episode: Episode, compression, level, chunk_steps) -> None:
    """The reference: the high-level h5py calls the writer made before the low-level encoder."""
    demo = data.create_group(demo_name(episode_id))
    demo.attrs["num_samples"] = episode.num_samples
    demo.attrs["seed"] = np.int64(episode.seed)
    demo.attrs["success"] = bool(episode.success)
    demo.attrs["env_id"] = np.int64(episode.env_id)
    for name, value in episode.attrs.items():
        demo.attrs[name] = value
    for name, value in episode.dr.items():
        demo.attrs[f"dr/{name}"] = value
    for key, array in episode.data.items():
        chunked = array.size > 0
        demo.create_dataset(
            key,
            data=array,
            chunks=(min(len(array), chunk_steps), *array.shape[1:]) if chunked else None,
            compression=compression if chunked else None,
            compression_opts=level if chunked else None,
            shuffle=chunked and compression is not None,
        )


def describe(group: h5py.Group) -> dict[str, tuple]:
    """Every object under ``group`` with what the layout promises about it."""
    found = {"": ("group", attributes(group))}

    def visit(name: str, item) -> None:
        if isinstance(item, h5py.Group):
            found[name] = ("group", attributes(item))
            return
        dcpl = item.id.get_create_plist()
        filters = [dcpl.get_filter(i)[:3] for i in range(dcpl.get_nfilters())]
        found[name] = (
            item.shape,
            item.dtype.str,
            h5py.check_enum_dtype(item.dtype),
            item.id.get_type().get_class(),
            item.chunks,
            item.compression,
            item.compression_opts,
            item.shuffle,
            filters,
            dcpl.get_layout(),
            h5py.h5o.get_info(item.id).ctime,  # 0: no timestamps, so equal data gives equal files
            fill_value(dcpl, item.dtype),
        )
        np.testing.assert_array_equal(item[()], item[()])  # readable

    group.visititems(visit)
    return found


def attributes(item) -> list[tuple]:
    """Every attribute of ``item``: name, HDF5 type class and dataspace class, NumPy dtype, shape, values."""
    found = []
    for name, value in item.attrs.items():
        attribute = item.attrs.get_id(name)
        array = np.asarray(value)
        space = attribute.get_space().get_simple_extent_type()
        found.append((name, attribute.get_type().get_class(), space, array.dtype.str, array.shape, array.tolist()))
    return sorted(found)


def fill_value(dcpl, dtype: np.dtype):
    value = np.zeros((), dtype)
    dcpl.get_fill_value(value)
    return value.tolist()


def episode_with_edge_cases(length: int) -> Episode:
    episode = make_episode(3, length)
    episode.data["states/empty"] = np.zeros((length, 0), np.float32)
    episode.data["labels/grid"] = np.arange(length * 6, dtype=np.int64).reshape(length, 2, 3)
    episode.attrs["note"] = "text"
    episode.attrs["score"] = 0.25
    return episode


@pytest.mark.parametrize(("compression", "level"), [("gzip", 1), ("gzip", 6), ("lzf", None), (None, None)])
@pytest.mark.parametrize("length", [1, 7, 20])
@pytest.mark.parametrize("deflate", ["isal", "zlib"])
def test_encoder_layout_equals_high_level_h5py(tmp_path: Path, monkeypatch, compression, level, length, deflate):
    """gzip chunks are encoded by the encoder itself (ISA-L's deflate at levels 1-3 if installed, else zlib) and
    written directly: HDF5 must read them back as its own filters would have written them."""
    assert shards.isal_zlib is not None, "isal is a dependency: the fast path must be the one under test"
    if deflate == "zlib":
        monkeypatch.setattr(shards, "isal_zlib", None)
    chunk_steps = 8  # 20 steps: 3 chunks, the last one partial
    episode = episode_with_edge_cases(length)
    with h5py.File(tmp_path / "low.h5", "w") as low, h5py.File(tmp_path / "high.h5", "w") as high:
        EpisodeEncoder(compression, level, chunk_steps).write(low.create_group("data"), 3, episode)
        write_high_level(high.create_group("data"), 3, episode, compression, level, chunk_steps)
        expected = describe(high["data"])
        assert describe(low["data"]) == expected
        policy = low["data/demo_3/obs/policy"]
        assert policy.chunks == (min(length, chunk_steps), 3) and policy.compression == compression
        assert np.asarray(low["data/demo_3"].attrs["dr/action/joint_pos/latency"]).shape == ()
        for key, array in episode.data.items():
            np.testing.assert_array_equal(low[f"data/demo_3/{key}"][()], array, err_msg=key)


def test_gzip_chunks_are_plain_shuffled_zlib_streams(tmp_path: Path):
    """An independent decoding of the stored chunks: zlib, then the byte un-shuffle, gives each chunk's rows (the last
    chunk zero-padded to the chunk length)."""
    import zlib

    array = np.random.default_rng(0).normal(size=(19, 2, 3)).astype(np.float64)
    episode = Episode({"labels/x": array, "dones": np.arange(19) % 5 == 4}, 0, 0, True)
    with h5py.File(tmp_path / "s.h5", "w") as file:
        EpisodeEncoder("gzip", 1, 8).write(file.create_group("data"), 0, episode)
        for key, values in episode.data.items():
            dataset = file[f"data/demo_0/{key}"]
            for start in (0, 8, 16):
                mask, raw = dataset.id.read_direct_chunk((start,) + (0,) * (values.ndim - 1))
                assert mask == 0  # both filters applied
                size = values.dtype.itemsize
                plain = np.frombuffer(zlib.decompress(raw), np.uint8).reshape(size, -1).T.copy()
                rows = plain.view(values.dtype).reshape(8, *values.shape[1:])
                np.testing.assert_array_equal(rows[: len(values[start : start + 8])], values[start : start + 8])
                assert not rows[len(values[start : start + 8]) :].any()


def test_encoder_reuses_property_lists_across_episodes(tmp_path: Path):
    encoder = EpisodeEncoder("gzip", 1, 256)
    with h5py.File(tmp_path / "s.h5", "w") as file:
        data = file.create_group("data")
        for episode_id in range(4):
            encoder.write(data, episode_id, make_episode(episode_id, 5))
        assert sorted(data) == ["demo_0", "demo_1", "demo_2", "demo_3"]
    # one chunked list per chunk shape (all keys have 5 steps); the DR parameters are attributes
    assert set(encoder._dcpls) == {(5, 3), (5, 2), (5,), (5, 4)}


def test_encoder_rejects_a_reserved_attribute(tmp_path: Path):
    episode = make_episode(0, 2)
    episode.attrs[RESERVED_ATTRS[0]] = 1
    with h5py.File(tmp_path / "s.h5", "w") as file, pytest.raises(ValueError, match="reserved"):
        EpisodeEncoder("gzip", 1, 256).write(file.create_group("data"), 0, episode)


def test_dr_parameters_are_read_from_attributes_and_from_schema_1_datasets(tmp_path: Path):
    episode = make_episode(2, 4)
    with h5py.File(tmp_path / "s.h5", "w") as file:
        EpisodeEncoder("gzip", 1, 256).write(file.create_group("data"), 2, episode)
        old = file.create_group("old")  # schema 1: the DR parameters as datasets under dr/
        without_dr = Episode(episode.data, episode.env_id, episode.seed, episode.success, attrs=episode.attrs)
        write_high_level(old, 2, without_dr, "gzip", 1, 256)
        for name, value in episode.dr.items():
            old.create_dataset(f"demo_2/dr/{name}", data=value)
        for data in (file["data"], file["old"]):
            read = read_episode(data, 2)
            assert read.dr.keys() == episode.dr.keys() and read.attrs == episode.attrs
            for name, value in episode.dr.items():
                assert read.dr[name].dtype == value.dtype and read.dr[name].shape == np.shape(value)
                np.testing.assert_array_equal(read.dr[name], value)
