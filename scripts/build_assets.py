"""Rebuild the project's USD assets into assets/usd/ (or --out DIR): python scripts/build_assets.py [--out DIR]."""

from wam_isaac_assets.__main__ import main

if __name__ == "__main__":
    main()
