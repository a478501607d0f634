"""Lets `python -m rs3gw ...` behave exactly like the installed `rs3gw` console script."""

from rs3gw.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
