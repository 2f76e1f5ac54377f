"""Dense dynamics labels computed by Warp kernels from the simulator's state, in place.

``kernels`` holds the Warp kernels; ``functional`` wraps them for torch tensors (zero-copy views of Isaac Lab's
state); ``labeler`` keeps the short state history the horizon labels need and computes every label of a task per
step.
"""
