"""`python -m mnistmem` runs the command-line interface."""

from mnistmem.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
