"""Agent configurations of WAM-Push-Cube."""
