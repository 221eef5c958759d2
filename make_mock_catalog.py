#!/usr/bin/env python3
"""Write a SYNTHETIC CSC-like catalog with known truth, and its mock SIMBAD (--help)."""

import sys

from xrayclass.cli.mock import main

if __name__ == "__main__":
    sys.exit(main())
