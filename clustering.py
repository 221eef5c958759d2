#!/usr/bin/env python3
"""Stage 1 of the pipeline: features, preprocessing and Gaussian-mixture clusters (--help)."""

from xrayclass.cli.clustering import clustering_main
from xrayclass.cli.common import exit_promptly

if __name__ == "__main__":
    exit_promptly(clustering_main())
