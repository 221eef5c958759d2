#!/usr/bin/env python3
"""Classify new CSC detections (a table file or a CSC source name) with a run's artifacts (--help)."""

import sys

from xrayclass.cli.classify_source import main

if __name__ == "__main__":
    sys.exit(main())
