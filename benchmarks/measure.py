"""Run one command-line stage in this process and report its wall time and peak memory.

Used by run.py, one subprocess per stage, so that the peak resident memory measured
(``ru_maxrss`` of this process) is that stage's alone. Prints one JSON line. (The Dask
workers' own peaks are in the stage's log, which run.py reads.)
"""

import atexit
import json
import resource
import runpy
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def main():
    script, *args = sys.argv[1:]
    sys.path.insert(0, str(REPOSITORY))
    sys.argv = [str(REPOSITORY / script), *args]
    outcome = {"status": 0}
    start = time.perf_counter()

    def report():
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        print(json.dumps({"status": outcome["status"], "seconds": seconds, "peak_mb": peak_mb}), file=sys.__stdout__)
        sys.__stdout__.flush()

    # Reported by an exit handler: it runs however the stage script ends (its status is
    # then the process's own, which run.py checks).
    atexit.register(report)
    try:
        runpy.run_path(str(REPOSITORY / script), run_name="__main__")
    except SystemExit as exit_:
        outcome["status"] = exit_.code or 0
    sys.exit(outcome["status"])


if __name__ == "__main__":
    main()
