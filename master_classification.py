#!/usr/bin/env python3
"""Stage 4 of the pipeline: master classes of sources by hard and soft voting (--help)."""

import sys

from xrayclass.cli.stages import master_classification_main

if __name__ == "__main__":
    sys.exit(master_classification_main())
