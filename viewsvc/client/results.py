"""What the smart client returns: plain frozen dataclasses and one error type."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from goka.errors import ReadError
from viewsvc.v1 import table_pb2

__all__ = ["Entry", "GetResult", "ReadError", "ServedTable", "Source", "read_error"]


def read_error(exc: grpc.RpcError) -> ReadError:
    """The ReadError of a failed call: its status code and the server's details."""
    code = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    if callable(code) and callable(details):
        return ReadError(code(), details() or "")
    return ReadError(grpc.StatusCode.UNKNOWN, str(exc))


@dataclass(frozen=True)
class GetResult:
    """The value of one key, and where it came from."""

    key: bytes
    found: bool
    value: bytes
    """The value as stored in Kafka; ``b""`` when not found."""
    partition: int
    offset: int
    """The table offset the answering replica had applied (the next one it would apply)."""
    served_by: str
    """The member id of the node that read the value from its local copy."""

    @classmethod
    def from_pb(cls, response: table_pb2.GetResponse, key: bytes) -> GetResult:
        return cls(
            key=key,
            found=response.found,
            value=response.value,
            partition=response.partition,
            offset=response.offset,
            served_by=response.served_by,
        )


@dataclass(frozen=True)
class Entry:
    """One row of a scan."""

    key: bytes
    value: bytes
    partition: int


@dataclass(frozen=True)
class Source:
    """Where one partition's rows of a scan came from."""

    partition: int
    served_by: str
    offset: int


@dataclass(frozen=True)
class ServedTable:
    """A table the deployment serves, and how to encode, decode and route its keys."""

    name: str
    key_codec: str
    value_codec: str
    partitioner: str
    partition_count: int
    running_partitions: int
    """Partitions that some live member holds in the running state."""

    @classmethod
    def from_pb(cls, info: table_pb2.TableInfo) -> ServedTable:
        return cls(
            name=info.name,
            key_codec=info.key_codec,
            value_codec=info.value_codec,
            partitioner=info.partitioner,
            partition_count=info.partition_count,
            running_partitions=info.running_partitions,
        )
