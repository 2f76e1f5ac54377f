"""``python -m wam_isaac`` is the ``wam`` command."""

from wam_isaac.cli import main

if __name__ == "__main__":
    main()
