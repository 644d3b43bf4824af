"""A clone stands on its own: nothing the product, its tests or its benchmarks run reads a folder
beside the repository (the developers' shared folder is not in a user's clone)."""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Files that run: Python, shell, configuration. Prose (docs/, README) may name the folder.
RUNNABLE = re.compile(r"(\.(py|sh|cfg|ini|toml|yml|yaml|js|html|txt|in)$|^(labelloop|Dockerfile|\.ci/run)$)")
# `[s]hared`, the grep idiom: the pattern matches the folder's name but never its own line.
READS_SHARED = re.compile(
    r"""\.\./[s]hared\b"""                        # a relative path
    r"""|["'][s]hared["']\s*/"""                  # the folder, then a path joined to it
    r"""|/\s*["'][s]hared["']"""                  # a path joined to the folder
    r"""|["'][^"'\n]*/[s]hared/datasets"""        # an absolute path into it
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
        if not RUNNABLE.search(name):
            continue
        text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
        offenders += [f"{name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
                      if READS_SHARED.search(line)]
    assert not offenders, "reads the shared folder, which a user's clone does not have:\n" + "\n".join(offenders)


def test_the_pattern_catches_the_ways_a_path_is_written():
    name = "sh" + "ared"  # spelled apart, as `[s]hared` above, so this file does not match itself
    for line in [f'open("../{name}/datasets/x.csv")', f'ROOT.parent / "{name}" / "datasets"',
                 f"parents[2] / '{name}'", f'DIR = "/work/{name}/datasets/banking77"']:
        assert READS_SHARED.search(line), line
    for line in ["from celery import shared_task", "# counters shared by every web process", "shared_buffers"]:
        assert not READS_SHARED.search(line), line


def test_the_bundled_dataset_carries_its_licence():
    folder = ROOT / "datasets" / "banking77"
    assert "Attribution 4.0 International" in (folder / "LICENSE").read_text()
    assert "Casanueva" in (folder / "README.md").read_text()
    assert (folder / "train.csv").stat().st_size > 0 and (folder / "test.csv").stat().st_size > 0
