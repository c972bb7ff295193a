"""Where a result came from: the package versions and the git commit of the code that made it."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["PROVENANCE_PACKAGES", "collect_provenance"]

# Packages whose versions make a result reproducible (or explain why it is not).
PROVENANCE_PACKAGES = ("nasbench", "torch", "torchvision", "ray", "optuna", "mlflow", "torchattacks")


def _git(directory: str, *args: str) -> str | None:
    """git's stripped output in ``directory``, or None when git fails or is missing."""
    try:
        done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def _git_commit(directory: str) -> str | None:
    """HEAD, with " (uncommitted changes)" after it when tracked files differ from it: code run
    from a dirty tree is not that commit. Untracked files are left out, as a checkout holds
    experiments and other outputs that are no part of the code."""
    commit = _git(directory, "rev-parse", "HEAD")
    if not commit:
        return None
    dirty = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return f"{commit} (uncommitted changes)" if dirty else commit


@functools.cache
def _package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def collect_provenance() -> dict[str, Any]:
    """Package versions and the git commit of the working directory (None outside a checkout),
    marked "<commit> (uncommitted changes)" when the checkout has uncommitted changes.

    Ray runs trials in their own directories, so when the working directory is not a
    checkout the commit of the nasbench source tree is used instead, when there is one.
    """
    commit = _git_commit(os.getcwd()) or _git_commit(str(Path(__file__).resolve().parent))
    return {**_package_versions(), "git_commit": commit}
