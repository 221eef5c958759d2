#!/usr/bin/env python3
"""Stage 3 of the pipeline: per-cluster Mahalanobis classification (--help)."""

from xrayclass.cli.common import exit_promptly
from xrayclass.cli.stages import classification_main

if __name__ == "__main__":
    exit_promptly(classification_main())
