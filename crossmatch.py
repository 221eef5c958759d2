#!/usr/bin/env python3
"""Stage 2 of the pipeline: SIMBAD classes for the clustered detections (--help)."""

import sys

from xrayclass.cli.stages import crossmatch_main

if __name__ == "__main__":
    sys.exit(crossmatch_main())
