"""The membership table's contents, without Kafka: announcements in, live members out.

Kept apart from the follower thread (``membership.py``) so the rules can be tested alone: a
member is live while heard from within 3 of its heartbeat intervals; of two live members
claiming the same active partition, the higher generation wins, then the higher sequence.

Heard from within 3 heartbeats *of the topic's own clock*, the moment anything was last
heard: when nothing arrives, the topic is silent for everyone (its leader moved, its brokers
are down, this reader is cut off), not every member dead at once, nor dead one after the
other as their last announcements age (a member a little late when the topic stopped would
be). The table thus holds the last view, and past 1.5 heartbeats of silence says it is
``stale``. (While the topic flows, a member is taken for dead up to the gap between two
announcements later than by the wall clock: a fraction of a heartbeat.) Past 10
heartbeats of silence, and at least 30 s, it stops holding and members expire as usual (a sole
member that died is then taken for dead that much late, not never). The 30 s cover a leader
election after a broker crash: the controller waits ``broker.session.timeout.ms`` (9 s by
default) before it moves the partition, then the writers' and readers' metadata catch up,
however short the heartbeat.

When the topic flows again, its writers do not all get through at the same moment (each
finds the new leader on its own metadata refresh), nor steadily (one may get an announcement
through and then stall again: a producer whose messages timed out during the election was
seen waiting seconds for a new producer id while the broker's coordinator loaded): a member
live when the silence began stays live for 3 of its heartbeats, and at least 5 s, after the
announcement that ends it (the last one, when it flows with gaps), heard since or not.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError

from discovery import routing
from discovery.model import Location, MalformedAnnouncement, MemberInfo, Owner, from_announcement
from discovery.v1 import discovery_pb2 as pb

__all__ = [
    "HOLD_HEARTBEATS",
    "HOLD_SECONDS",
    "RESUME_SECONDS",
    "MISSED_HEARTBEATS",
    "SILENT_HEARTBEATS",
    "MemberTable",
]

MISSED_HEARTBEATS = 3
SILENT_HEARTBEATS = 1.5
"""Heartbeats with nothing heard from anyone after which the topic counts as silent."""
HOLD_HEARTBEATS = 10
"""Heartbeats of silence during which the last view is held (at least ``HOLD_SECONDS``)."""
HOLD_SECONDS = 30.0
"""Seconds of silence during which the last view is held, however short the heartbeat."""
RESUME_SECONDS = 5.0
"""Seconds after a silence within which the members heard before it must be heard again."""
_logger = logging.getLogger("goka.discovery")


class MemberTable:
    """The last announcement of every member, and when it was heard. Thread-safe."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._lock = threading.Lock()
        self._records: dict[str, MemberInfo] = {}
        self._live: frozenset[str] = frozenset()
        self._silence: tuple[datetime, datetime] | None = None
        """The last silence of the topic: (last heard before it, first heard after it)."""
        self.malformed = 0
        """Malformed messages seen (logged and ignored)."""

    def apply(self, key: bytes | None, value: bytes | None, now: datetime, *, live: bool) -> bool:
        """Takes one message of the topic; True if the table changed.

        ``live`` says whether the topic has been read to its end: before that, a record
        counts as heard when it was emitted, so announcements already stale at start-up are
        never live; after it, when it arrives, so clock skew between machines does not matter.
        """
        if key is None:
            return self._malformed("a message without a key")
        member_id = key.decode(errors="replace")
        if value is None:  # a tombstone: the member stopped gracefully
            with self._lock:
                return self._records.pop(member_id, None) is not None
        try:
            announcement = pb.Announcement.FromString(value)
            emitted = announcement.emitted_at.ToDatetime(tzinfo=UTC)
            info = from_announcement(announcement, key, now if live else min(emitted, now))
        except (DecodeError, MalformedAnnouncement, ValueError, OverflowError) as exc:
            return self._malformed(f"{member_id!r}: {exc}")
        with self._lock:
            records = list(self._records.values()) if live else []
            if _silent(records, now):  # past the hold, members expire as usual
                began, heartbeat = _topic_clock(records)
                last = self._silence
                if last is not None and now - last[1] <= _grace(heartbeat):
                    began = last[0]  # a gap while resuming: one silence, not a new one
                self._silence = (began, now)
            known = self._records.get(member_id)
            if known is not None and info.sequence < known.sequence and _alive(known, now):
                return False  # older than what we have (a dead member may come back anew)
            self._records[member_id] = info
        return True

    def _malformed(self, what: str) -> bool:
        self.malformed += 1
        _logger.warning("discovery topic %s: ignoring malformed announcement, %s", self.topic, what)
        return False

    def expire(self, now: datetime) -> bool:
        """Recomputes who is live; True if that changed (a member died or came back)."""
        live = frozenset(m.member_id for m in self.members(now))
        changed = live != self._live
        self._live = live
        return changed

    def members(self, now: datetime) -> list[MemberInfo]:
        """The live members, sorted by member id (as when the topic went silent, while it
        is: see ``stale``)."""
        with self._lock:
            records, silence = list(self._records.values()), self._silence
        at = _judged_at(records, now)
        return sorted(
            (m for m in records if _alive(m, at) or _resuming(m, silence, now)),
            key=lambda m: m.member_id,
        )

    def stale(self, now: datetime) -> bool:
        """Whether the view is held because the topic is silent (see the module)."""
        with self._lock:
            records = list(self._records.values())
        return _silent(records, now)

    def owners(self, table: str, partition: int, now: datetime) -> list[Owner]:
        """The live members holding ``partition`` of ``table`` (see ``routing.owners``)."""
        return routing.owners(self.members(now), table, partition)

    def locate(self, table: str, key: str | bytes, now: datetime) -> Location:
        """The partition of ``key`` and its live holders (see ``routing.locate``)."""
        return routing.locate(self.members(now), table, key)


def _topic_clock(records: list[MemberInfo]) -> tuple[datetime, float]:
    """When anything was last heard, and the longest heartbeat of the (non-empty) records."""
    return max(m.last_heard for m in records), max(m.heartbeat for m in records)


def _judged_at(records: list[MemberInfo], now: datetime) -> datetime:
    """The time at which to judge liveness, the topic's own clock: when anything was last
    heard (nobody is heard while nothing arrives, so a member a little late when the topic
    stopped is not dropped for it), ``now`` once the silence outlasted the hold."""
    if not records:
        return now
    latest, heartbeat = _topic_clock(records)
    return now if (now - latest).total_seconds() > _hold(heartbeat) else latest


def _silent(records: list[MemberInfo], now: datetime) -> bool:
    """Whether nothing has arrived for more than 1.5 heartbeats, within the hold."""
    if not records:
        return False
    latest, heartbeat = _topic_clock(records)
    return SILENT_HEARTBEATS * heartbeat < (now - latest).total_seconds() <= _hold(heartbeat)


def _hold(heartbeat: float) -> float:
    """Seconds of silence during which the last view is held."""
    return max(HOLD_HEARTBEATS * heartbeat, HOLD_SECONDS)


def _resuming(member: MemberInfo, silence: tuple[datetime, datetime] | None, now: datetime) -> bool:
    """Whether ``member``, live when the last silence began, may still be getting through
    (see the module)."""
    if silence is None or not _alive(member, silence[0]):
        return False
    return now - silence[1] <= _grace(member.heartbeat)


def _grace(heartbeat: float) -> timedelta:
    """How long after a silence a member heard before it may take to be heard again."""
    return timedelta(seconds=max(MISSED_HEARTBEATS * heartbeat, RESUME_SECONDS))


def _alive(member: MemberInfo, now: datetime) -> bool:
    return now - member.last_heard <= timedelta(seconds=MISSED_HEARTBEATS * member.heartbeat)
