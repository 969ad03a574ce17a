"""The default stack file moved out of the session stack's way, for tests that run a
second stack (or part of one) beside it."""

from __future__ import annotations

import re
from pathlib import Path

from harness.topology import DEFAULT_STACK_FILE

SHIFT = 10_000  # ports 18xxx -> 28xxx: the session's stack keeps running beside
SHIFTED_SUBNET = "172.31.251.0/24"


def shifted_stack_text(subnet: str = SHIFTED_SUBNET) -> str:
    """The default stack file with every 18xxx port moved to 28xxx and its node network
    on another subnet."""
    text = re.sub(r"\b18(\d{3})\b", lambda m: str(int(m.group(0)) + SHIFT),
                  DEFAULT_STACK_FILE.read_text())
    return text.replace("subnet: 172.31.250.0/24", f"subnet: {subnet}")


def shifted_stack_file(folder: Path, name: str = "stack.yaml",
                       subnet: str = SHIFTED_SUBNET) -> Path:
    path = folder / name
    path.write_text(shifted_stack_text(subnet))
    return path
