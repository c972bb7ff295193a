"""Which SQLite journal a benchmark file gets: WAL on a local disk, the rollback journal
on a file system shared between hosts."""

from __future__ import annotations

import os
from pathlib import Path

from nasbench.errors import UserError

# File systems shared between hosts, where SQLite's WAL (shared memory) cannot work.
NETWORK_FILE_SYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "lustre",
        "gpfs",
        "beegfs",
        "glusterfs",
        "fuse.glusterfs",
        "ceph",
        "fuse.sshfs",
        "9p",
        "afs",
    }
)


def file_system_type(path: Path) -> str | None:
    """The type of the Linux mount holding ``path`` (read from /proc/mounts), or None."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = Path(os.path.realpath(path))
    deepest, kind = -1, None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = Path(fields[1].replace("\\040", " "))  # /proc/mounts escapes spaces
        if (mount == target or mount in target.parents) and len(mount.parts) > deepest:
            deepest, kind = len(mount.parts), fields[2]
    return kind


def journal_mode_for(path: Path) -> str:
    """``"wal"`` on a local disk, ``"delete"`` (the rollback journal) on a network file
    system; ``$NASBENCH_STORE_JOURNAL`` overrides it for file systems not recognised."""
    chosen = os.environ.get("NASBENCH_STORE_JOURNAL", "").strip().lower()
    if chosen:
        if chosen not in ("wal", "delete"):
            raise UserError(f"NASBENCH_STORE_JOURNAL must be 'wal' or 'delete', not {chosen!r}")
        return chosen
    return "delete" if file_system_type(path) in NETWORK_FILE_SYSTEMS else "wal"
