"""A memory balloon: allocate and touch N MiB, then hold it until killed or a deadline.

Run inside a node's memory cgroup, it creates real pressure there; with the node's
``oom_score_adj`` raised to 1000 (and its own lowered where allowed) the kernel's
OOM killer picks the node, not the balloon.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

CHUNK_MIB = 16
PAGE = 4096


def protect_from_oom_killer() -> None:
    """Lowering the score needs CAP_SYS_RESOURCE; without it the node's raised score
    (see harness.faults.memory) is what makes the kernel pick the node."""
    with contextlib.suppress(PermissionError):
        Path("/proc/self/oom_score_adj").write_text("-1000")


def inflate(total_mib: int) -> list[bytearray]:
    chunks = []
    for _ in range(max(1, total_mib // CHUNK_MIB)):
        chunk = bytearray(CHUNK_MIB * 2**20)
        for offset in range(0, len(chunk), PAGE):  # touch every page so it is charged
            chunk[offset] = 1
        chunks.append(chunk)
    return chunks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.faults.balloon")
    parser.add_argument("--mib", type=int, required=True)
    parser.add_argument("--hold-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    protect_from_oom_killer()
    held = inflate(args.mib)
    print(f"inflated {len(held) * CHUNK_MIB} MiB", flush=True)
    time.sleep(args.hold_s)  # bounded hold; the fault kills it earlier on revert
    return 0


if __name__ == "__main__":
    sys.exit(main())
