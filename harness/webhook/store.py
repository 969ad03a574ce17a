"""Alertmanager notifications as the receiver stores them: one JSON line each.

:class:`Notification` is one alert delivered to one receiver;
:class:`NotificationLog` keeps them in memory and appends each to a file, so a crash
loses nothing received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Notification:
    """One alert as delivered by Alertmanager to one receiver."""

    alertname: str
    status: str
    labels: Mapping[str, str] = field(hash=False)
    starts_at: str
    ends_at: str
    receiver: str
    received_at: float
    path: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, obj: object) -> Notification:
        if not isinstance(obj, dict):
            raise ValueError(f"not a notification: {obj!r:.200}")
        labels = obj.get("labels") or {}
        return cls(alertname=str(obj["alertname"]), status=str(obj["status"]),
                   labels={str(k): str(v) for k, v in dict(labels).items()},
                   starts_at=str(obj.get("starts_at", "")), ends_at=str(obj.get("ends_at", "")),
                   receiver=str(obj.get("receiver", "")),
                   received_at=float(obj.get("received_at", 0.0)), path=str(obj.get("path", "")))


def notifications_from_payload(payload: object, *, path: str,
                               received_at: float) -> tuple[Notification, ...]:
    """Split an Alertmanager webhook payload (version 4) into notifications."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook payload: no 'alerts' list")
    receiver = str(payload.get("receiver", ""))
    return tuple(_one(alert, receiver, path, received_at) for alert in payload["alerts"])


def _one(alert: object, receiver: str, path: str, received_at: float) -> Notification:
    if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
        raise ValueError(f"alert without labels: {alert!r:.200}")
    labels = {str(k): str(v) for k, v in alert["labels"].items()}
    return Notification(alertname=labels.get("alertname", ""),
                        status=str(alert.get("status", "")), labels=labels,
                        starts_at=str(alert.get("startsAt", "")),
                        ends_at=str(alert.get("endsAt", "")), receiver=receiver,
                        received_at=received_at, path=path)


class NotificationLog:
    """Notifications in memory and, one JSON line each, in a file (reloaded at start)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._items: list[Notification] = list(self._load())

    def _load(self) -> Iterator[Notification]:
        if self.path is None or not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield Notification.from_json(json.loads(line))

    def append(self, items: Sequence[Notification]) -> None:
        with self._lock:
            self._items.extend(items)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.writelines(n.to_json() + "\n" for n in items)

    def items(self) -> tuple[Notification, ...]:
        with self._lock:
            return tuple(self._items)
