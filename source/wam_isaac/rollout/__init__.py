"""Running tasks under behaviour policies to produce labeled data: ``policies`` (random, scripted experts, trained
rsl-rl checkpoints, each with exploration noise) and ``driver`` (steps N envs, labels every step, streams finished
episodes to a dataset)."""
