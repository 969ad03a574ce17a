"""Decode YAML files into frozen dataclasses, naming file, line and field on error.

One decoder serves every file the harness reads (the stack topology, the drills
config): a dataclass describes the shape, and :func:`load_yaml` checks each
field against its type hint while it still knows where in the file it stands.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml

from harness.errors import ConfigError

T = TypeVar("T")

_SCALARS: dict[type, str] = {int: "an integer", float: "a number", str: "a string",
                             bool: "true or false"}


def load_yaml(path: Path, shape: type[T], *, overrides: dict[str, Any] | None = None) -> T:
    """Read ``path`` and decode it as ``shape`` (a dataclass)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    return decode_text(text, shape, path=str(path), overrides=overrides)


def decode_text(text: str, shape: type[T], *, path: str = "<string>",
                overrides: dict[str, Any] | None = None) -> T:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}",
                          path=path, line=line) from exc
    if node is None:
        raise ConfigError("the file is empty", path=path)
    value = _Decoder(path).decode(node, shape, "")
    if overrides:
        value = apply_overrides(value, overrides, path=path)
    return typing.cast(T, value)


def apply_overrides(value: T, overrides: dict[str, Any], *, path: str = "<overrides>") -> T:
    """Replace dotted fields (``"slo.ttft_p95_s": 1.5``) in a decoded dataclass."""
    for dotted, raw in overrides.items():
        value = _replace_dotted(value, dotted.split("."), raw, dotted, path)
    return value


def _replace_dotted(obj: Any, parts: list[str], raw: Any, dotted: str, path: str) -> Any:
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise ConfigError("no such field", path=path, field=dotted)
    names = {f.name: f for f in dataclasses.fields(obj)}
    head = parts[0]
    if head not in names:
        raise ConfigError(f"no such field (known: {', '.join(names)})", path=path, field=dotted)
    if len(parts) > 1:
        inner = _replace_dotted(getattr(obj, head), parts[1:], raw, dotted, path)
        return dataclasses.replace(obj, **{head: inner})
    hint = typing.get_type_hints(type(obj))[head]
    node = yaml.compose(yaml.safe_dump(raw), Loader=yaml.SafeLoader)
    assert node is not None  # safe_dump of any value yields one document
    new = _Decoder(path).decode(node, hint, dotted)
    return dataclasses.replace(obj, **{head: new})


class _Decoder:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: yaml.Node, field: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, line=node.start_mark.line + 1,
                           field=field or "<top>")

    def decode(self, node: yaml.Node, hint: Any, field: str) -> Any:
        origin = get_origin(hint)
        if origin in (Union, types.UnionType):
            return self._union(node, hint, field)
        if origin in (list, tuple):
            return self._sequence(node, hint, field)
        if origin is dict:
            return self._mapping(node, get_args(hint)[1], field)
        if dataclasses.is_dataclass(hint):
            return self._dataclass(node, hint, field)
        if hint in _SCALARS:
            return self._scalar(node, hint, field)
        if hint is Any:
            return yaml.safe_load(yaml.serialize(node))
        raise TypeError(f"cannot decode {hint!r}")

    def _union(self, node: yaml.Node, hint: Any, field: str) -> Any:
        args = [a for a in get_args(hint) if a is not type(None)]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return None
        return self.decode(node, args[0], field)

    def _sequence(self, node: yaml.Node, hint: Any, field: str) -> Any:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field, "expected a list")
        item = get_args(hint)[0]
        return tuple(self.decode(n, item, f"{field}[{i}]") for i, n in enumerate(node.value))

    def _mapping(self, node: yaml.Node, item: Any, field: str) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field, "expected a mapping")
        return {k.value: self.decode(v, item, _join(field, k.value)) for k, v in node.value}

    def _dataclass(self, node: yaml.Node, hint: Any, field: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field, "expected a mapping")
        hints = typing.get_type_hints(hint)
        fields = {f.name: f for f in dataclasses.fields(hint)}
        given: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key not in fields:
                raise self.fail(key_node, _join(field, key),
                                f"unknown field (known: {', '.join(fields)})")
            given[key] = self.decode(value_node, hints[key], _join(field, key))
        for name, f in fields.items():
            no_default = (f.default is dataclasses.MISSING
                          and f.default_factory is dataclasses.MISSING)
            if name not in given and no_default:
                raise self.fail(node, _join(field, name), "required field is missing")
        try:
            return hint(**given)
        except (ValueError, TypeError) as exc:
            raise self.fail(node, field, str(exc)) from exc

    def _scalar(self, node: yaml.Node, hint: type, field: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, field, f"expected {_SCALARS[hint]}")
        value = yaml.safe_load(yaml.serialize(node))
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if hint is str and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise self.fail(node, field, f"expected {_SCALARS[hint]}, got {node.value!r}")
        return value


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
