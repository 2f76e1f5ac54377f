"""A writer process killed with SIGKILL mid-shard leaves only complete, verified shards in the manifest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np

from wam_isaac.data.manifest import TEMP_SHARD_NAME, load_manifest, shard_name
from wam_isaac.data.reader import unlisted_files, verify

WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from wam_isaac.data.episode import Episode
    from wam_isaac.data.specs import KeySpec
    from wam_isaac.data.writer import DatasetWriter

    writer = DatasetWriter(sys.argv[1], "WAM-Test", "cafe", {"x": KeySpec((64,))}, episodes_per_shard=3)
    episode_id = 0
    while True:  # until killed
        writer.write(Episode({"x": np.full((200, 64), episode_id, np.float32)}, env_id=0, seed=0, success=True))
        episode_id += 1
    """
)


def test_sigkill_mid_shard_leaves_a_truthful_manifest(tmp_path: Path):
    out_dir = tmp_path / "d"
    process = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(out_dir)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            manifest_path = out_dir / "manifest.json"
            if manifest_path.exists() and len(load_manifest(out_dir)["shards"]) >= 2:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the writer process exited on its own"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL

    manifest = load_manifest(out_dir)
    assert len(manifest["shards"]) >= 2 and manifest["complete"] is False
    assert verify(out_dir) == []
    for shard in manifest["shards"]:
        with h5py.File(out_dir / shard["name"], "r") as file:
            assert len(file["data"]) == shard["episodes"] == 3
            for episode_id in shard["episode_ids"]:
                np.testing.assert_array_equal(file[f"data/demo_{episode_id}/x"][()], episode_id)
    # only a removable temp shard (or temp manifest) may remain; the next shard can be complete but unlisted only if
    # the kill fell between the two back-to-back renames that publish it and its manifest (see writer.py)
    allowed_shard = shard_name(len(manifest["shards"]))
    for name in unlisted_files(out_dir):
        assert TEMP_SHARD_NAME.fullmatch(name) or name in (".manifest.json.tmp", allowed_shard), name


PARENT_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from wam_isaac.data.episode import Episode
    from wam_isaac.data.specs import KeySpec
    from wam_isaac.data.writer import DatasetWriter

    if __name__ == "__main__":
        writer = DatasetWriter(sys.argv[1], "WAM-Test", "cafe", {"x": KeySpec((64,))}, episodes_per_shard=3)
        episode_id = 0
        while True:  # until killed; 300 steps: an episode is larger than a pipe's buffer
            writer.write(Episode({"x": np.full((300, 64), episode_id, np.float32)}, env_id=0, seed=0, success=True))
            if episode_id == 0:
                print(*writer.writer_pids, flush=True)
            episode_id += 1
    """
)


def process_exited(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_writing_process_of_a_sigkilled_parent_deletes_its_temp_shard_and_exits(tmp_path: Path):
    out_dir = tmp_path / "d"
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(out_dir)], stdout=subprocess.PIPE, text=True)
    try:
        child_pids = [int(pid) for pid in parent.stdout.readline().split()]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and parent.poll() is None:
            if (out_dir / "manifest.json").exists() and len(load_manifest(out_dir)["shards"]) >= 2:
                break
            time.sleep(0.02)
        assert parent.poll() is None, "the parent exited on its own"
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    assert len(child_pids) == 2  # the default: two writing processes
    while not all(process_exited(pid) for pid in child_pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(process_exited(pid) for pid in child_pids), "a writing process outlived its parent"
    manifest = load_manifest(out_dir)
    assert len(manifest["shards"]) >= 2 and manifest["complete"] is False and verify(out_dir) == []
    # the writing processes deleted their temporary shards and published nothing after the parent died
    assert unlisted_files(out_dir) == []


KILLED_CHILD_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    import numpy as np
    from wam_isaac.data.episode import Episode
    from wam_isaac.data.errors import WriterError
    from wam_isaac.data.specs import KeySpec
    from wam_isaac.data.writer import DatasetWriter

    if __name__ == "__main__":
        episode = Episode({"x": np.zeros((5, 64), np.float32)}, env_id=0, seed=0, success=True)
        try:
            with DatasetWriter(sys.argv[1], "WAM-Test", "cafe", {"x": KeySpec((64,))}, episodes_per_shard=3) as w:
                w.write(episode)
                os.kill(w.writer_pids[0], signal.SIGKILL)
                w._writers[0].process.join()
                w.write(episode)
        except WriterError as error:
            print(error)
    """
)


def test_a_killed_writing_process_is_raised_as_writer_error(tmp_path: Path):
    script = tmp_path / "killed_child.py"
    script.write_text(KILLED_CHILD_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "d")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "exited with code -9" in result.stdout
    assert sorted(path.name for path in (tmp_path / "d").iterdir()) == ["manifest.json"]
