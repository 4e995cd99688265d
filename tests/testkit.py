"""Helpers shared by tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_files(files, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copy(file, destination / Path(file).name)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m customer_segmentation ...` in a separate process."""
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "customer_segmentation", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def settings_flags(settings) -> list[str]:
    """CLI flags that reproduce the given settings in another process."""
    flags = []
    for name, value in settings.to_params().items():
        flags += [f"--{name.replace('_', '-')}", value]
    return flags
