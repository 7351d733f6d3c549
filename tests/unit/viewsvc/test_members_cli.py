"""``viewsvc members``: the text table and JSON of hand-built members, and argument checks.

Running the command against a broker is an integration test (tests/integration).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from discovery import MemberInfo, PartitionInfo, TableInfo
from viewsvc.cli.main import _stop_on_signals, cli
from viewsvc.cli.members import format_table, only_table, to_json

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2025, 3, 1, 12, 0, 10, tzinfo=UTC)


def table(topic: str, *partitions: PartitionInfo, count: int = 4) -> TableInfo:
    return TableInfo(
        topic=topic,
        partitioner="murmur2",
        partition_count=count,
        key_codec="string",
        value_codec="int64",
        partitions=partitions,
    )


def member(member_id: str, *tables: TableInfo, role: str = "processor", **kw: Any) -> MemberInfo:
    base = MemberInfo(
        member_id=member_id,
        role=role,
        endpoint="10.0.0.1:50051",
        group="clicks-counter",
        generation=3,
        sequence=17,
        heartbeat=2.0,
        emitted_at=NOW - timedelta(seconds=2, milliseconds=500),
        last_heard=NOW - timedelta(seconds=2, milliseconds=400),
        tables=tables,
    )
    return dataclasses.replace(base, **kw)


ACTIVE0 = PartitionInfo(0, "active", "running", applied_offset=1042, lag=0)
STANDBY1 = PartitionInfo(1, "standby", "recovering", applied_offset=-1, lag=-1)
ACTIVE2 = PartitionInfo(2, "active", "recovering", applied_offset=900, lag=120)

MEMBERS = [
    member("clicks-counter-0", table("clicks-counter-table", ACTIVE0, STANDBY1)),
    member(
        "view-a",
        table("clicks-counter-table", ACTIVE2),
        table("users-table", PartitionInfo(3, "replica", "running", 5, 0)),
        role="view",
        endpoint="",
        group="",
        last_heard=NOW,
    ),
    member("router-1", role="router", group="", last_heard=NOW + timedelta(seconds=1)),
]


def test_table_has_one_row_per_partition_with_member_columns_once() -> None:
    lines = format_table(MEMBERS, NOW).splitlines()
    assert lines[0].split() == [
        "MEMBER",
        "ROLE",
        "ENDPOINT",
        "GROUP",
        "TABLE",
        "PARTITION",
        "KIND",
        "STATE",
        "LAG",
        "OFFSET",
        "LAST",
        "HEARD",
    ]
    rows = [line.split() for line in lines[1:]]
    assert rows == [
        ["clicks-counter-0", "processor", "10.0.0.1:50051", "clicks-counter",
         "clicks-counter-table", "0", "active", "running", "0", "1042", "2s", "ago"],
        ["1", "standby", "recovering", "?", "-"],
        ["view-a", "view", "-", "-", "clicks-counter-table", "2", "active", "recovering",
         "120", "900", "0s", "ago"],
        ["users-table", "3", "replica", "running", "0", "5"],
        ["router-1", "router", "10.0.0.1:50051", "-", "-", "0s", "ago"],
    ]  # fmt: skip


def test_table_columns_are_aligned() -> None:
    lines = format_table(MEMBERS, NOW).splitlines()
    header = lines[0]
    for line in lines[1:]:
        assert not line.endswith(" ")
    # the partition numbers end where the PARTITION header ends (right-aligned)
    end = header.index("PARTITION") + len("PARTITION")
    assert lines[1][end - 1] == "0" and lines[2][end - 1] == "1"
    assert lines[3][header.index("TABLE") :].startswith("clicks-counter-table")
    assert lines[4][header.index("TABLE") :].startswith("users-table")


def test_table_of_no_members() -> None:
    assert format_table([], NOW) == "no live members"


def test_last_heard_takes_naive_times_as_utc() -> None:
    naive = member("m", last_heard=datetime(2025, 3, 1, 11, 59, 0))
    assert format_table([naive], NOW).splitlines()[1].endswith("70s ago")


def test_json_has_every_field_and_iso_utc_times() -> None:
    document = to_json(MEMBERS[:2])
    assert json.loads(json.dumps(document)) == document  # plain JSON types only
    first = document["members"][0]
    assert first == {
        "member_id": "clicks-counter-0",
        "role": "processor",
        "endpoint": "10.0.0.1:50051",
        "group": "clicks-counter",
        "generation": 3,
        "sequence": 17,
        "heartbeat": 2.0,
        "emitted_at": "2025-03-01T12:00:07.500Z",
        "last_heard": "2025-03-01T12:00:07.600Z",
        "tables": [
            {
                "topic": "clicks-counter-table",
                "partitioner": "murmur2",
                "partition_count": 4,
                "key_codec": "string",
                "value_codec": "int64",
                "partitions": [
                    {
                        "partition": 0,
                        "kind": "active",
                        "state": "running",
                        "applied_offset": 1042,
                        "lag": 0,
                    },
                    {
                        "partition": 1,
                        "kind": "standby",
                        "state": "recovering",
                        "applied_offset": -1,
                        "lag": -1,
                    },
                ],
            }
        ],
    }
    assert [t["topic"] for t in document["members"][1]["tables"]] == [
        "clicks-counter-table",
        "users-table",
    ]
    assert to_json([]) == {"members": []}


def test_json_times_in_other_zones_are_converted_to_utc() -> None:
    cet = datetime(2025, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    document = to_json([member("m", emitted_at=cet, last_heard=cet)])
    assert document["members"][0]["emitted_at"] == "2025-03-01T13:00:00.000Z"


def test_only_table_keeps_members_holding_it_with_that_table_only() -> None:
    narrowed = only_table(MEMBERS, "users-table")
    assert [m.member_id for m in narrowed] == ["view-a"]
    assert [t.topic for t in narrowed[0].tables] == ["users-table"]
    assert [m.member_id for m in only_table(MEMBERS, "clicks-counter-table")] == [
        "clicks-counter-0",
        "view-a",
    ]
    assert only_table(MEMBERS, "unknown") == []


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["members", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--brokers", "--topic", "--watch", "--interval", "--json", "--table"):
        assert option in result.output
    assert "goka-discovery" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing option '--brokers'"),
        (["--brokers", "b:9092", "--interval", "0"], "--interval"),
        (["--brokers", "b:9092", "--timeout", "-1"], "--timeout"),
        (["--brokers", "b:9092", "--config", "nonsense"], "'nonsense' is not KEY=VALUE"),
    ],
)
def test_invalid_arguments_are_refused_before_connecting(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["members", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_python_dash_m_viewsvc_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "viewsvc", "members", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--brokers" in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_watch_stops_on_ctrl_c_and_sigterm_and_restores_the_handlers(signum: int) -> None:
    before = signal.getsignal(signum)
    with _stop_on_signals() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signum)
        assert stop.wait(5)
    assert signal.getsignal(signum) is before
