"""``viewsvc get``, ``viewsvc scan`` and ``viewsvc locate``: reading tables with the client.

Values are decoded with the table's announced value codec (``bytes``, ``string``, ``int64``
and ``json`` are known here; others are shown as Python bytes literals); keys are shown as
UTF-8 text. ``--raw`` shows both as bytes literals.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator

import click
from confluent_kafka import KafkaException

from discovery import Location
from discovery.routing import table_info
from goka.codec import JSON, Int64, String
from goka.errors import CodecError, GokaError
from viewsvc.cli.common_options import Connection, connection_options
from viewsvc.client import Client, Consistency

__all__ = ["get", "locate", "scan", "watch"]

_DECODERS: dict[str, Callable[[bytes], str]] = {
    "bytes": repr,
    "string": String().decode,
    "int64": lambda data: str(Int64().decode(data)),
    "json": lambda data: json.dumps(JSON().decode(data), ensure_ascii=False),
}

table_option = click.option("--table", required=True, help="the table topic")
raw_option = click.option("--raw", is_flag=True, help="show keys and values as bytes literals")


def key_range_options(command: Callable[..., None]) -> Callable[..., None]:
    """--prefix, --start and --end (scan, watch)."""
    command = click.option("--end", help="only keys < END")(command)
    command = click.option("--start", help="only keys >= START (byte order)")(command)
    return click.option("--prefix", help="only keys starting with PREFIX")(command)


def read_option_flags(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option(
        "--max-lag",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="answer only from replicas at most this many offsets behind (0: no bound)",
    )(command)
    return click.option(
        "--consistency",
        type=click.Choice(["any", "active"]),
        default="any",
        show_default=True,
        help="any running replica (least lag first), or only the active owner",
    )(command)


@click.command()
@connection_options
@table_option
@read_option_flags
@raw_option
@click.argument("keys", nargs=-1, required=True)
def get(
    connection: Connection,
    table: str,
    consistency: Consistency,
    max_lag: int,
    raw: bool,
    keys: tuple[str, ...],
) -> None:
    """Print KEY<TAB>VALUE for each KEY (<not found> for a missing one)."""
    with _client(connection) as client:
        results = client.get_many(table, keys, consistency=consistency, max_lag=max_lag)
        show = _value_formatter(client, table, raw)
        for result in results:
            value = show(result.value) if result.found else "<not found>"
            click.echo(f"{_show_key(result.key, raw)}\t{value}")


@click.command()
@connection_options
@table_option
@key_range_options
@click.option("--limit", type=click.IntRange(min=0), default=0, help="at most N rows (0: all)")
@click.option("--page-token", default="", help="continue a previous scan (its next page token)")
@click.option("--partition", "partitions", type=click.IntRange(min=0), multiple=True,
              help="only this partition (repeatable)")  # fmt: skip
@read_option_flags
@raw_option
def scan(
    connection: Connection,
    table: str,
    prefix: str | None,
    start: str | None,
    end: str | None,
    limit: int,
    page_token: str,
    partitions: tuple[int, ...],
    consistency: Consistency,
    max_lag: int,
    raw: bool,
) -> None:
    """Print KEY<TAB>VALUE for the rows of a range, in key order; when rows are left, the token
    to continue with goes to stderr."""
    with _client(connection) as client:
        show = _value_formatter(client, table, raw)
        rows = client.scan(
            table,
            start=start,
            end=end,
            prefix=prefix,
            limit=limit,
            page_token=page_token,
            partitions=partitions,
            consistency=consistency,
            max_lag=max_lag,
        )
        with rows:
            for entry in rows:
                click.echo(f"{_show_key(entry.key, raw)}\t{show(entry.value)}")
        if rows.next_page_token:
            click.echo(f"next page token: {rows.next_page_token}", err=True)


def _offsets(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[int, int]:
    offsets = {}
    for value in values:
        partition, _, offset = value.partition("=")
        if not (partition.isdigit() and offset.isdigit()):
            raise click.BadParameter(f"{value!r} is not PARTITION=OFFSET (e.g. 0=1234)")
        offsets[int(partition)] = int(offset)
    return offsets


@click.command()
@connection_options
@table_option
@key_range_options
@click.option("--key", "keys", multiple=True, help="only this key (repeatable)")
@click.option("--partition", "partitions", type=click.IntRange(min=0), multiple=True,
              help="only this partition (repeatable)")  # fmt: skip
@click.option("--from", "from_offsets", multiple=True, callback=_offsets, metavar="P=OFFSET",
              help="resume partition P at OFFSET (repeatable)")  # fmt: skip
@click.option("--snapshot", is_flag=True, help="first print the current rows")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True),
              help="stop after this many seconds (default: until Ctrl-C)")  # fmt: skip
@read_option_flags
@raw_option
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def watch(
    connection: Connection,
    table: str,
    prefix: str | None,
    start: str | None,
    end: str | None,
    keys: tuple[str, ...],
    partitions: tuple[int, ...],
    from_offsets: dict[int, int],
    snapshot: bool,
    duration: float | None,
    consistency: Consistency,
    max_lag: int,
    raw: bool,
    as_json: bool,
) -> None:
    """Print changes as they come: PARTITION@OFFSET<TAB>KEY<TAB>VALUE (<deleted> for a
    deleted key; snapshot rows as snapshot<TAB>KEY<TAB>VALUE). The stream resumes by itself
    when a node stops; on exit the offsets to resume from (--from) go to stderr."""
    with _client(connection) as client:
        show = _value_formatter(client, table, raw)
        changes = client.watch(
            table,
            keys=keys or None,
            prefix=prefix,
            start=start,
            end=end,
            partitions=partitions,
            from_offsets=from_offsets,
            snapshot=snapshot,
            consistency=consistency,
            max_lag=max_lag,
            timeout=duration,
            reconnect_timeout=connection.timeout,
        )
        try:
            with changes:
                for change in changes:
                    value = None if change.value is None else show(change.value)
                    if as_json:
                        click.echo(json.dumps({
                            "key": _show_key(change.key, raw), "value": value,
                            "deleted": change.deleted, "partition": change.partition,
                            "offset": change.offset, "snapshot": change.snapshot,
                        }, ensure_ascii=False))  # fmt: skip
                        continue
                    where = "snapshot" if change.snapshot else f"{change.partition}@{change.offset}"
                    shown = "<deleted>" if value is None else value
                    click.echo(f"{where}\t{_show_key(change.key, raw)}\t{shown}")
        except KeyboardInterrupt:
            pass
        finally:
            resume = " ".join(f"--from {p}={o}" for p, o in sorted(changes.positions.items()))
            if resume:
                click.echo(f"resume with: {resume}", err=True)


@click.command()
@connection_options
@table_option
@click.argument("key")
def locate(connection: Connection, table: str, key: str) -> None:
    """Print the partition of KEY and the members holding it, best first."""
    with _client(connection) as client:
        click.echo(format_location(client.locate(table, key)))


def format_location(location: Location) -> str:
    lines = [f"table {location.table}, partition {location.partition}"]
    if not location.owners:
        return "\n".join([*lines, "no live member holds this partition"])
    header = ("MEMBER", "ENDPOINT", "KIND", "STATE", "LAG", "OFFSET")
    rows = [
        (
            o.member_id,
            o.endpoint or "-",
            o.kind,
            o.state,
            str(o.lag) if o.lag >= 0 else "?",
            str(o.applied_offset) if o.applied_offset >= 0 else "-",
        )
        for o in location.owners
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


@contextlib.contextmanager
def _client(connection: Connection) -> Iterator[Client]:
    """A client that had a chance to learn the members; errors become ClickExceptions."""
    try:
        with Client(
            list(connection.targets) or None,
            brokers=connection.brokers,
            discovery_topic=connection.discovery_topic,
            extra_config=connection.extra_config,
            tls=connection.tls,
            ca_file=connection.ca_file,
            cert_file=connection.cert_file,
            key_file=connection.key_file,
            token=connection.token,
            timeout=connection.timeout,
        ) as client:
            # a target forwards reads while the members are unknown: do not wait long for them
            wait = connection.timeout if connection.brokers else min(connection.timeout, 2.0)
            if not client.wait_ready(wait) and connection.brokers:
                raise click.ClickException(
                    f"the discovery topic {connection.discovery_topic!r} was not read within "
                    f"{connection.timeout}s: check --brokers (and --config), or raise --timeout"
                )
            yield client
    except (GokaError, KafkaException) as exc:  # KafkaException: librdkafka refused --config
        raise click.ClickException(str(exc)) from exc


def _value_formatter(client: Client, table: str, raw: bool) -> Callable[[bytes], str]:
    if raw:
        return repr
    info = table_info(client.members(), table)
    codec = info.value_codec if info is not None else _listed_codec(client, table)
    decode = _DECODERS.get(codec)
    if decode is None:
        why = f"its value codec {codec!r} is not" if codec else "no value codec is announced,"
        click.echo(
            f"values of {table!r} are shown as bytes literals: {why} one of {', '.join(_DECODERS)}",
            err=True,
        )
        return repr

    def show(data: bytes) -> str:
        try:
            return decode(data)
        except CodecError:
            return repr(data)

    return show


def _listed_codec(client: Client, table: str) -> str:
    return next((t.value_codec for t in client.list_tables() if t.name == table), "")


def _show_key(key: bytes, raw: bool) -> str:
    if raw:
        return repr(key)
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return repr(key)
