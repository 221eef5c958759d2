#!/usr/bin/env python3
"""Stage 3 of the pipeline: per-cluster Mahalanobis classification (--help)."""

from xrayclass.cli.classification import classification_main
from xrayclass.cli.common import exit_promptly

if __name__ == "__main__":
    exit_promptly(classification_main())
