"""The pytest plugin end to end, through pytester."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _quiet_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def test_stack_tests_are_skipped_with_no_stack(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.stack
        def test_needs_stack(stack):
            raise AssertionError("must not run")

        def test_unit():
            assert True
    """)
    result = pytester.runpytest("--no-stack", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs the real stack (--no-stack given)*"])


def test_markers_are_registered_and_strict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.drill
        def test_a():
            pass

        @pytest.mark.not_a_marker
        def test_b():
            pass
    """)
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*'not_a_marker' not found in `markers`*"])
    assert result.ret != 0


def test_options_are_listed_with_their_ini_names(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["llm-drill failure drills:", "*--stack-url=*",
                                 "*[ini: llm_drill_stack_url]*", "*--no-stack*"])


def test_contradicting_options_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest("--no-stack", "--stack-url", "http://127.0.0.1:1")
    result.stderr.fnmatch_lines(["*--no-stack and --stack-url contradict*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_attach_to_unreachable_stack_names_the_url(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.stack
        def test_uses(stack):
            pass
    """)
    result = pytester.runpytest("--stack-url", "http://127.0.0.1:9", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*http://127.0.0.1:9/readiness is unreachable*front door*"])


DRILLS_CONFTEST = Path(__file__).resolve().parents[2] / "drills" / "conftest.py"


@pytest.fixture
def catalogue(pytester: pytest.Pytester) -> pytest.Pytester:
    """The real drills/conftest.py over two stand-in drills, next to one unit test. A root
    conftest replaces the stack, so a drill that is not skipped fails instead of starting
    the real one."""
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(scope="session")
        def stack():
            pytest.fail("a drill ran: the real stack would have started")
    """)
    drills = pytester.mkdir("drills")
    (drills / "conftest.py").write_text(DRILLS_CONFTEST.read_text(encoding="utf-8"))
    (drills / "test_surge.py").write_text(
        "def test_surge():\n    pass\n\ndef test_surge_twice():\n    pass\n")
    pytester.makepyfile(test_unit="def test_unit():\n    pass\n")
    return pytester


def test_no_stack_skips_every_drill(catalogue: pytest.Pytester) -> None:
    result = catalogue.runpytest("--no-stack", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED [[]2[]] drills/test_surge.py*needs the real stack*"])


def test_marker_drill_selects_the_drills_and_only_them(catalogue: pytest.Pytester) -> None:
    result = catalogue.runpytest("-m", "drill", "--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["drills/test_surge.py::test_surge",
                                 "drills/test_surge.py::test_surge_twice",
                                 "2/3 tests collected (1 deselected)*"])
    result.stdout.no_fnmatch_line("*test_unit*")


def test_marker_stack_selects_the_drills_and_not_drill_the_rest(
        catalogue: pytest.Pytester) -> None:
    needs_stack = catalogue.runpytest("-m", "stack", "--collect-only", "-q",
                                      "-p", "no:cacheprovider")
    needs_stack.stdout.fnmatch_lines(["2/3 tests collected (1 deselected)*"])
    rest = catalogue.runpytest("-m", "not drill", "-p", "no:cacheprovider")
    rest.assert_outcomes(passed=1, deselected=2)


_INCONCLUSIVE_DRILL = """
    from harness.errors import FaultUnverified, Inconclusive

    def test_unproven_precondition():
        raise Inconclusive("streams in flight on node1", "running=0 on node1 and node2")

    def test_unverified_fault():
        raise FaultUnverified("SIGKILL node1", "applied but not observed")

    def test_healthy():
        pass
"""


def test_inconclusive_is_its_own_outcome_and_fails_the_session(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_INCONCLUSIVE_DRILL)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.stdout.fnmatch_lines([
        "*test_unproven_precondition INCONCLUSIVE*",
        "*test_unverified_fault INCONCLUSIVE*",
        "*test_healthy PASSED*",
        "*inconclusive drills (neither passed nor failed)*",
        "INCONCLUSIVE *test_unproven_precondition - streams in flight on node1: not proven; "
        "seen: running=0 on node1 and node2",
        "*1 passed*2 inconclusive*",  # pytester may add "N warnings," between
    ])
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("inconclusive") == 2
    assert "failed" not in outcomes
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_inconclusive_shows_as_a_letter_in_the_progress_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_INCONCLUSIVE_DRILL)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*.py II. *"])
    assert result.ret != 0
