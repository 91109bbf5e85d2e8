"""Terminal rendering of alerts for ``plateflow subscribe`` and the demo's live feed."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import orjson
import redis
from rich.console import Console
from rich.text import Text

from sinks import ALERTS_CHANNEL, COVERT_CHANNEL

_KIND_STYLE = {"exact": "bold red", "ocr": "red", "fuzzy": "yellow", "partial": "magenta"}


def render_alert(alert: dict[str, Any]) -> Text:
    """One line per alert: when, what matched, which list and why, where, and the advisories."""
    read, entry, match, hotlist = alert["read"], alert["entry"], alert["match"], alert["hotlist"]
    when = datetime.fromtimestamp(read["ts"] / 1000, tz=timezone.utc).strftime("%H:%M:%S")
    line = Text()
    line.append(f"{when} ")
    if alert.get("sighting_of"):
        line.append("SIGHTING ", style="dim")
    elif hotlist.get("covert"):
        line.append("COVERT   ", style="bold blue")
    else:
        line.append("ALERT    ", style="bold")
    kind = match["kind"]
    line.append(f"{kind:<7} ", style=_KIND_STYLE.get(kind, ""))
    line.append(f"{read['plate']:<10}", style="bold")
    line.append(f" {read.get('state') or '--'} ")
    line.append(f"~ {entry['plate']:<10} ", style="cyan")
    line.append(f"{hotlist['name']} (p{hotlist['priority']}) ")
    line.append(f"{entry.get('reason') or ''}", style="italic")
    if entry.get("case_number"):
        line.append(f" [{entry['case_number']}]")
    line.append(f" @ {read['camera_id']} conf {read['confidence']:.2f}")
    if match.get("edits") or match.get("substitutions"):
        detail = [*match.get("edits", []), *(f"{s[1]}~{s[2]}" for s in match["substitutions"])]
        line.append(f" ({', '.join(detail)})", style="dim")
    if alert.get("state_mismatch"):
        line.append(" state mismatch", style="yellow")
    for advisory in alert.get("advisories", [])[1:]:  # [0] is the standing verify advisory
        line.append(f"\n           ! {advisory}", style="bold yellow")
    return line


class AlertFeed:
    """Subscribes to the alert channels in a thread and hands each alert to ``on_alert``."""

    def __init__(
        self,
        redis_url: str,
        on_alert: Callable[[dict[str, Any]], None],
        covert: bool = True,
    ) -> None:
        self._client = redis.Redis.from_url(redis_url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        channels = [ALERTS_CHANNEL, COVERT_CHANNEL] if covert else [ALERTS_CHANNEL]
        self._pubsub.subscribe(*channels)
        self._on_alert = on_alert
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-feed", daemon=True)
        self.counts: Counter[str] = Counter()

    def start(self) -> AlertFeed:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            alert = orjson.loads(message["data"])
            key = "sighting" if alert.get("sighting_of") else alert["match"]["kind"]
            self.counts[key] += 1
            self._on_alert(alert)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._pubsub.close()
        self._client.close()


def print_alert(console: Console) -> Callable[[dict[str, Any]], None]:
    def show(alert: dict[str, Any]) -> None:
        console.print(render_alert(alert), highlight=False)

    return show
