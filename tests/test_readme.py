"""The README's library example runs and prints what the README says it prints."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPOSITORY


def library_example():
    text = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it as a library", 1)[1].split("\n## ", 1)[0]
    code, printed = re.search(r"```python\n(.*?)```.*?Its output.*?```\n(.*?)```", section, re.S).groups()
    return code, printed


@pytest.mark.slow
def test_the_library_example_prints_what_the_readme_shows(tmp_path):
    code, printed = library_example()
    assert "run_classification" in code and "save_figure" in code
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == printed
    assert (tmp_path / "figures" / "fig10.png").stat().st_size > 0


def test_every_module_file_and_name_the_readme_cites_exists():
    """The README points readers at files and names of the package: they must still exist."""
    import importlib

    text = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    files = set(re.findall(r"xrayclass/[\w/]+\.py", text))
    assert files and not [f for f in sorted(files) if not (REPOSITORY / f).is_file()]
    missing = []
    for name in sorted(set(re.findall(r"`(xrayclass(?:\.\w+)+)", text))):
        parts = name.split(".")
        for split in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                found = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attribute in parts[split:]:
                found = getattr(found, attribute, None)
            if found is None:
                missing.append(name)
            break
    assert not missing, f"README cites names that do not exist: {missing}"
