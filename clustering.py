#!/usr/bin/env python3
"""Stage 1 of the pipeline: features, preprocessing and Gaussian-mixture clusters (--help)."""

import sys

from xrayclass.cli.stages import clustering_main

if __name__ == "__main__":
    sys.exit(clustering_main())
