#!/usr/bin/env python3
"""Fetch the stage-1 input from the Chandra Source Catalog TAP service (--help)."""

import sys

from xrayclass.cli.fetch import main

if __name__ == "__main__":
    sys.exit(main())
