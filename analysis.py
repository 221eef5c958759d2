#!/usr/bin/env python3
"""Analyses of the pipeline's outputs, one sub-command each (--help); e.g. `compare`."""

import sys

from xrayclass.cli.analysis import main

if __name__ == "__main__":
    sys.exit(main())
