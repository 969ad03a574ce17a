from pathlib import Path

import pytest

from harness.stack import log_files
from harness.stack.log_files import NO_LOG, tail_of


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_files, "BLOCK", 7)  # lines span blocks


@pytest.mark.parametrize("lines", [1, 3, 10, 50])
def test_the_tail_is_the_last_lines_of_the_file(tmp_path: Path, small_blocks: None,
                                                lines: int) -> None:
    text = "".join(f"line {i} of the log\n" for i in range(20))
    log = tmp_path / "node1.log"
    log.write_text(text)
    assert tail_of(log, lines) == "\n".join(text.splitlines()[-lines:])


def test_a_last_line_without_a_break_counts(tmp_path: Path, small_blocks: None) -> None:
    log = tmp_path / "node1.log"
    log.write_text("first\nsecond\nthird (still being written)")
    assert tail_of(log, 2) == "second\nthird (still being written)"


def test_no_lines_asked_and_an_empty_file_give_nothing(tmp_path: Path) -> None:
    log = tmp_path / "node1.log"
    log.write_text("")
    assert tail_of(log, 5) == ""
    log.write_text("one\n")
    assert tail_of(log, 0) == ""


def test_a_missing_log_says_so(tmp_path: Path) -> None:
    assert tail_of(tmp_path / "absent.log", 5) == NO_LOG


def test_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    log = tmp_path / "node1.log"
    log.write_bytes(b"ok\n\xff\xfe broken\n")
    assert tail_of(log, 1) == "\ufffd\ufffd broken"
