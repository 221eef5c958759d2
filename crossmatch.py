#!/usr/bin/env python3
"""Stage 2 of the pipeline: SIMBAD classes for the clustered detections (--help)."""

from xrayclass.cli.common import exit_promptly
from xrayclass.cli.crossmatch import crossmatch_main

if __name__ == "__main__":
    exit_promptly(crossmatch_main())
