"""Owner-only local state: directories provtrace creates are 0700 and its files 0600.

The spool, progress log, quarantine, archive, checkpoints and private keys hold evidence that
another local user must neither read nor alter. Modes are given at creation (a umask can only
take bits away from them, never add any); a directory that already exists keeps the mode its
owner gave it (an operator may share an archive with a group on purpose).
"""

from __future__ import annotations

import os
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def make_dirs(path: Path) -> None:
    """``path`` and its missing parents, each created 0700 (``Path.mkdir(parents=True)`` would
    create the parents with the umask's default)."""
    missing: list[Path] = []
    current = Path(path)
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise


def opener(path: str, flags: int) -> int:
    """For ``open(..., opener=opener)``: a file it creates is 0600."""
    return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
