"""Pieces shared by the WAM tasks: sim-to-real action randomization (latency, strength), physics presets, and the
read-out of the domain-randomization parameters each environment was given.

Importing this package imports Isaac Lab's config classes (no simulator is started).
"""
