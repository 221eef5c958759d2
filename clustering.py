#!/usr/bin/env python3
"""Stage 1 of the pipeline: features, preprocessing and Gaussian-mixture clusters (--help)."""

from xrayclass.cli.common import exit_promptly
from xrayclass.cli.stages import clustering_main

if __name__ == "__main__":
    exit_promptly(clustering_main())
