"""The pytest plugin end to end, through pytester."""

from __future__ import annotations

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
