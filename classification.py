#!/usr/bin/env python3
"""Stage 3 of the pipeline: per-cluster Mahalanobis classification (--help)."""

import sys

from xrayclass.cli.stages import classification_main

if __name__ == "__main__":
    sys.exit(classification_main())
