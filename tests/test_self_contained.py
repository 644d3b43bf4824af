"""A clone stands on its own: nothing the product, its tests or its benchmarks run reads a folder
beside the repository (the developers' `../shared` is not in a user's clone)."""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Files that run: Python, shell, configuration. Prose (docs/, README) may mention ../shared.
RUNNABLE = re.compile(r"(\.(py|sh|cfg|ini|toml|yml|yaml|js|html|txt|in)$|^(labelloop|Dockerfile|\.ci/run)$)")
READS_SHARED = re.compile(
    r"""\.\./shared\b"""                          # a relative path
    r"""|["']shared["']\s*/"""                    # "shared" / "datasets"
    r"""|/\s*["']shared["']"""                    # parent / "shared"
    r"""|["'][^"'\n]*/shared/datasets"""          # "/work/shared/datasets/..."
)


def tracked_files() -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    return listed.stdout.splitlines()


def test_no_tracked_file_reads_the_shared_folder():
    offenders = []
    for name in tracked_files():
        if not RUNNABLE.search(name) or name == "tests/test_self_contained.py":
            continue
        text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
        offenders += [f"{name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
                      if READS_SHARED.search(line)]
    assert not offenders, "reads ../shared, which a user's clone does not have:\n" + "\n".join(offenders)


def test_the_pattern_catches_the_ways_a_path_is_written():
    for line in ['open("../shared/datasets/x.csv")', 'ROOT.parent / "shared" / "datasets"',
                 "parents[2] / 'shared'", 'DIR = "/work/shared/datasets/banking77"']:
        assert READS_SHARED.search(line), line
    for line in ["from celery import shared_task", "# counters shared by every web process", "shared_buffers"]:
        assert not READS_SHARED.search(line), line


def test_the_bundled_dataset_carries_its_licence():
    folder = ROOT / "datasets" / "banking77"
    assert "Attribution 4.0 International" in (folder / "LICENSE").read_text()
    assert "Casanueva" in (folder / "README.md").read_text()
    assert (folder / "train.csv").stat().st_size > 0 and (folder / "test.csv").stat().st_size > 0
