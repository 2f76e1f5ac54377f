"""WAM Isaac: World Action Models for Isaac Lab."""
