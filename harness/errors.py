"""The one error root of llm-drill.

    HarnessError
    ├── ConfigError            a stack / drill file or option is malformed (file, line, field)
    ├── StackError
    │   ├── ComponentFailed    a component died or could not start (name, log tail)
    │   ├── NotReady           a wait ran out of time (what was awaited, what was seen)
    │   ├── PortInUse          a port the topology needs is taken (port, holder)
    │   ├── MissingDependency  a binary or package is not installed (name, install command)
    │   ├── Unreachable        a URL did not answer as expected (url, expected)
    │   ├── UnknownComponent   no component of that name in the stack (name, known names)
    │   └── Unsupported        the runtime lacks a capability (capability, runtime, action)
    ├── FaultError
    │   ├── FaultApplyError    a fault could not be applied or verified as applied
    │   │   └── FaultUnverified  applied, but its effect was not observed (also Inconclusive)
    │   └── FaultRevertError   a fault could not be reverted
    ├── QueryError             Prometheus rejected a query (query, message)
    ├── ProbeError             a probe could not read the value it asks for (url, metric)
    ├── Inconclusive           a drill cannot judge: its fault or precondition is unproven
    │                          (what, seen); a third outcome, never a pass
    └── DrillFailed            a drill's assertion on the stack did not hold (property)

Third-party errors are mapped at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error llm-drill raises on purpose."""


class ConfigError(HarnessError):
    """A configuration file or option is malformed."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None,
                 field: str = "") -> None:
        where = path
        if line is not None:
            where = f"{where}:{line}"
        if field:
            where = f"{where} [{field}]" if where else f"[{field}]"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line
        self.field = field


class StackError(HarnessError):
    """The serving stack did not behave as the harness needs."""


class ComponentFailed(StackError):
    """A component died or failed to start; carries the tail of its log."""

    def __init__(self, component: str, reason: str, log_tail: str = "") -> None:
        text = f"{component}: {reason}"
        if log_tail:
            text += f"\n--- last lines of {component}'s log ---\n{log_tail}"
        super().__init__(text)
        self.component = component
        self.reason = reason
        self.log_tail = log_tail


class NotReady(StackError):
    """A condition did not hold before its deadline."""

    def __init__(self, awaited: str, within: float, last_seen: str = "") -> None:
        text = f"timed out after {within:.1f}s waiting for {awaited}"
        if last_seen:
            text += f"; last seen: {last_seen}"
        super().__init__(text)
        self.awaited = awaited
        self.within = within
        self.last_seen = last_seen


class PortInUse(StackError):
    """A port the topology needs is already bound."""

    def __init__(self, port: int, component: str, holder: str = "") -> None:
        text = f"port {port} needed by {component} is already in use"
        text += f" by {holder}" if holder else " (holder unknown)"
        super().__init__(text)
        self.port = port
        self.component = component
        self.holder = holder


class MissingDependency(StackError):
    """A binary or package the stack needs is not installed."""

    def __init__(self, name: str, install: str) -> None:
        super().__init__(f"{name} is not installed; install it with: {install}")
        self.name = name
        self.install = install


class Unreachable(StackError):
    """A component's URL did not answer as expected."""

    def __init__(self, url: str, expected: str, detail: str = "") -> None:
        text = f"{url} is unreachable: expected {expected}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)
        self.url = url
        self.expected = expected


class UnknownComponent(StackError):
    """A component name the stack does not have."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"no component named {name!r} in this stack; known: {', '.join(known)}")
        self.name = name
        self.known = known


class Unsupported(StackError):
    """The runtime the stack runs on lacks a capability an action needs."""

    def __init__(self, capability: str, runtime: str, action: str, hint: str = "") -> None:
        text = f"{action} needs {capability}, which the {runtime} runtime does not have"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.capability = capability
        self.runtime = runtime
        self.action = action


class FaultError(HarnessError):
    """A fault could not be driven as asked."""


class FaultApplyError(FaultError):
    """A fault could not be applied, or its effect could not be verified."""


class FaultRevertError(FaultError):
    """A fault could not be reverted."""


class Inconclusive(HarnessError):
    """The drill could not prove what it needs to judge the stack: its fault took no
    visible effect, or a precondition did not hold. Neither passed nor failed."""

    def __init__(self, what: str, seen: str) -> None:
        super().__init__(f"{what}: not proven; seen: {seen or 'nothing'}")
        self.what = what
        self.seen = seen


class FaultUnverified(FaultApplyError, Inconclusive):
    """A fault was applied, but its effect could not be observed: the drill cannot say
    anything about how the stack copes with it."""


class ProbeError(HarnessError):
    """A probe could not read the value it asks for: a metric absent from a page, a
    field missing from an answer. Never read as zero."""

    def __init__(self, url: str, metric: str, detail: str = "") -> None:
        text = f"{url}: cannot read {metric}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)
        self.url = url
        self.metric = metric
        self.detail = detail


class QueryError(HarnessError):
    """Prometheus rejected a query."""

    def __init__(self, query: str, message: str) -> None:
        super().__init__(f"query {query!r} failed: {message}")
        self.query = query
        self.message = message


class DrillFailed(HarnessError, AssertionError):
    """A property the drill asserts on the stack did not hold; ``also`` names the other
    properties (with their details) judged together with it that did not hold either."""

    def __init__(self, prop: str, detail: str,
                 also: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__("; ".join(f"{p}: {d}" for p, d in ((prop, detail), *also)))
        self.property = prop
        self.detail = detail
        self.also = also
