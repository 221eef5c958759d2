#!/usr/bin/env python3
"""Stage 4 of the pipeline: master classes of sources by hard and soft voting (--help)."""

from xrayclass.cli.common import exit_promptly
from xrayclass.cli.master_classification import master_classification_main

if __name__ == "__main__":
    exit_promptly(master_classification_main())
