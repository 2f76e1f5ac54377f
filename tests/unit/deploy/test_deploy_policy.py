"""The deploy runtime against an independent reference (hand-made layout, the torch actor, the action pipeline by
hand), over episodes with resets; bad input raises or holds as configured."""

from __future__ import annotations

import json

import numpy as np
import pytest
from deploy_synthetic import JOINTS, ReferencePolicy, make_actor, random_terms, write_synthetic_export

from wam_isaac.deploy import BadObservation, DeployConfig, MetadataError, Policy


def run_episodes(policy, reference, rng, episodes=3, steps=6):
    worst, clipped = 0.0, 0
    for _ in range(episodes):
        policy.reset()
        reference.reset()
        for _ in range(steps):
            terms = random_terms(rng)
            got, want = policy.step(terms), reference.step(terms)
            worst = max(worst, float(np.abs(got - want).max()))
            clipped += int(np.isclose(want, -0.5).any() or np.isclose(want, 0.6).any())
    return worst, clipped


def test_runtime_matches_reference_across_episode_resets(mlp_export):
    directory, actor = mlp_export
    policy = Policy.load(directory)
    worst, clipped = run_episodes(policy, ReferencePolicy(actor), np.random.default_rng(1))
    assert worst < 1e-5
    assert clipped > 0, "the data must exercise the joint limits"
    assert policy.joint_names == JOINTS
    assert policy.term_names == ["base_ang_vel", "joint_pos", "command"]


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_recurrent_runtime_keeps_and_resets_its_state(tmp_path, rnn_type):
    actor = make_actor(rnn_type, seed=3)
    metadata = write_synthetic_export(tmp_path, actor)
    recurrent = metadata["policy"]["recurrent"]
    assert recurrent["type"] == rnn_type and recurrent["hidden_size"] == 8
    assert recurrent["state_inputs"] == (["h_in", "c_in"] if rnn_type == "lstm" else ["h_in"])
    policy = Policy.load(tmp_path)
    worst, _ = run_episodes(policy, ReferencePolicy(actor), np.random.default_rng(2))
    assert worst < 1e-5
    # the state matters: the same input after different histories gives different actions
    rng = np.random.default_rng(4)
    terms = random_terms(rng)
    policy.reset()
    first = policy.step(terms)
    policy.step(random_terms(rng))
    policy.step(random_terms(rng))
    policy.reset()
    assert np.array_equal(policy.step(terms), first)


def test_missing_extra_misshaped_nan_and_integer_terms_raise_by_name(mlp_export):
    directory, _ = mlp_export
    policy = Policy.load(directory)
    good = random_terms(np.random.default_rng(0))
    cases = {
        "missing ['command']": {k: v for k, v in good.items() if k != "command"},
        "unexpected ['extra']": {**good, "extra": np.zeros(1)},
        "(actions supplied by the runtime)": {**good, "actions": np.zeros(3)},
        "term 'joint_pos': expected shape (3,), got (4,)": {**good, "joint_pos": np.zeros(4)},
        "term 'command': non-finite": {**good, "command": np.array([0.0, np.nan])},
        "term 'base_ang_vel': non-finite": {**good, "base_ang_vel": np.array([0.0, np.inf, 0.0])},
        "term 'command': expected float32 or float64, got dtype int64": {**good, "command": np.array([1, 2])},
        "term 'command': expected a float numpy array, got list": {**good, "command": [0.0, 1.0]},
    }
    for message, terms in cases.items():
        with pytest.raises(BadObservation) as error:
            policy.step(terms)
        assert message in str(error.value), (message, str(error.value))


def test_hold_returns_the_last_safe_targets_and_leaves_the_state_untouched(mlp_export):
    directory, actor = mlp_export
    held = Policy.load(directory, DeployConfig(on_bad_input="hold"))
    reference = ReferencePolicy(actor)
    rng = np.random.default_rng(5)
    # before any good step: the targets of a zero action (the offsets, within limits)
    bad = {**random_terms(rng), "joint_pos": np.array([np.nan, 0.0, 0.0])}
    assert np.allclose(held.step(bad), [0.1, -0.2, 0.3])
    assert held.fault_count == 1 and "joint_pos" in held.last_fault
    for _ in range(4):
        terms = random_terms(rng)
        targets = held.step(terms)
        assert np.abs(targets - reference.step(terms)).max() < 1e-5
        # a bad step in between: same targets back, and the history and last action are not advanced
        assert np.array_equal(held.step({k: v for k, v in terms.items() if k != "command"}), targets)
        assert held.last_fault is not None
    assert held.fault_count == 5
    held.step(random_terms(rng))
    assert held.last_fault is None


def test_a_permuted_robot_joint_order_is_matched_by_name(mlp_export):
    directory, actor = mlp_export
    robot_order = ("j_c", "j_extra", "j_a", "j_b")  # the robot lists its joints differently, and has one more
    policy = Policy.load(directory, DeployConfig(joint_names=robot_order))
    reference = ReferencePolicy(actor)
    assert policy.joint_names == ["j_c", "j_a", "j_b"]
    rng = np.random.default_rng(6)
    for _ in range(5):
        terms = random_terms(rng)
        robot_joint_pos = np.array([terms["joint_pos"][2], 9.0, terms["joint_pos"][0], terms["joint_pos"][1]])
        got = policy.step({**terms, "joint_pos": robot_joint_pos})
        want = reference.step(terms)
        assert np.abs(got - want[[2, 0, 1]]).max() < 1e-5
    # the same term keyed by joint name
    keyed = Policy.load(directory)
    reference.reset()
    terms = random_terms(rng)
    by_name = {name: terms["joint_pos"][i] for i, name in enumerate(JOINTS)}
    by_name_shuffled = dict(reversed(list(by_name.items())))
    assert np.abs(keyed.step({**terms, "joint_pos": by_name_shuffled}) - reference.step(terms)).max() < 1e-5
    with pytest.raises(BadObservation, match=r"joints missing \['j_b'\], unexpected \['j_x'\]"):
        keyed.step({**terms, "joint_pos": {"j_a": 0.0, "j_x": 0.0, "j_c": 0.0}})
    # a robot order that lacks a joint the policy uses is refused at load time
    with pytest.raises(MetadataError, match=r"\['j_b'\]"):
        Policy.load(directory, DeployConfig(joint_names=("j_a", "j_c")))
    # without names, an array in the robot's (permuted) order cannot be recognized: it has the wrong length here
    with pytest.raises(BadObservation, match="joint_pos"):
        keyed.step({**terms, "joint_pos": robot_joint_pos})


def test_rate_limit_and_limits(mlp_export):
    directory, actor = mlp_export
    rate = 0.05
    policy = Policy.load(directory, DeployConfig(max_target_rate=rate))
    unlimited = ReferencePolicy(actor)
    rng = np.random.default_rng(7)
    previous, limited_steps = None, 0
    for _ in range(10):
        terms = random_terms(rng)
        got, free = policy.step(terms), unlimited.step(terms)
        assert (got >= -0.5).all() and (got <= 0.6).all()
        if previous is None:
            assert np.abs(got - free).max() < 1e-5  # the first step after a reset is not rate-limited
        else:
            assert np.abs(got - previous).max() <= rate + 1e-12
            expected = np.clip(free, previous - rate, previous + rate)
            assert np.abs(got - expected).max() < 1e-5
            limited_steps += int(np.abs(free - previous).max() > rate)
        previous = got
    assert limited_steps > 0
    no_clamp = Policy.load(directory, DeployConfig(clamp_to_limits=False))
    reference = ReferencePolicy(actor)
    outside = 0
    for _ in range(10):
        terms = random_terms(rng)
        got = no_clamp.step(terms)
        outside += int((got < -0.5).any() or (got > 0.6).any())
        reference.step(terms)
    assert outside > 0


def test_metadata_checks(mlp_export):
    directory, _ = mlp_export
    metadata = json.loads((directory / "metadata.json").read_text())
    good_sha = metadata["files"]["policy.onnx"]["sha256"]
    metadata["files"]["policy.onnx"]["sha256"] = good_sha[::-1]
    (directory / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(MetadataError, match="sha256 differs"):
        Policy.load(directory)
    Policy.load(directory, DeployConfig(verify_checksums=False))
    metadata["schema_version"] = 2
    (directory / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(MetadataError, match="version 2; this runtime reads 'wam_isaac.export' version 1"):
        Policy.load(directory, DeployConfig(verify_checksums=False))
    with pytest.raises(MetadataError, match="on_bad_input"):
        Policy.load(directory, DeployConfig(on_bad_input="ignore"))
