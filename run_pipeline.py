#!/usr/bin/env python3
"""The main job behind `make run`: the four stages end to end, then the paper's check (--help)."""

import sys

from xrayclass.cli.run import main

if __name__ == "__main__":
    sys.exit(main())
