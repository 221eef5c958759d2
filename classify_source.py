#!/usr/bin/env python3
"""Classify new CSC detections (a table file or a CSC source name) with a run's artifacts (--help)."""
import sys

from xrayclass.classify_source_cli import main

if __name__ == "__main__":
    sys.exit(main())
