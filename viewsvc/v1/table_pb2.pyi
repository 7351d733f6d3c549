from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Consistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSISTENCY_UNSPECIFIED: _ClassVar[Consistency]
    CONSISTENCY_ANY: _ClassVar[Consistency]
    CONSISTENCY_ACTIVE: _ClassVar[Consistency]
CONSISTENCY_UNSPECIFIED: Consistency
CONSISTENCY_ANY: Consistency
CONSISTENCY_ACTIVE: Consistency

class ReadOptions(_message.Message):
    __slots__ = ("consistency", "max_lag", "min_offsets", "min_offsets_topic")
    class MinOffsetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_LAG_FIELD_NUMBER: _ClassVar[int]
    MIN_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    MIN_OFFSETS_TOPIC_FIELD_NUMBER: _ClassVar[int]
    consistency: Consistency
    max_lag: int
    min_offsets: _containers.ScalarMap[int, int]
    min_offsets_topic: str
    def __init__(self, consistency: _Optional[_Union[Consistency, str]] = ..., max_lag: _Optional[int] = ..., min_offsets: _Optional[_Mapping[int, int]] = ..., min_offsets_topic: _Optional[str] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("table", "key", "options")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    table: str
    key: bytes
    options: ReadOptions
    def __init__(self, table: _Optional[str] = ..., key: _Optional[bytes] = ..., options: _Optional[_Union[ReadOptions, _Mapping]] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "value", "partition", "offset", "served_by", "key")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    partition: int
    offset: int
    served_by: str
    key: bytes
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., served_by: _Optional[str] = ..., key: _Optional[bytes] = ...) -> None: ...

class GetManyRequest(_message.Message):
    __slots__ = ("table", "keys", "options")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    table: str
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    options: ReadOptions
    def __init__(self, table: _Optional[str] = ..., keys: _Optional[_Iterable[bytes]] = ..., options: _Optional[_Union[ReadOptions, _Mapping]] = ...) -> None: ...

class GetManyResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GetResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[GetResponse, _Mapping]]] = ...) -> None: ...

class ScanRequest(_message.Message):
    __slots__ = ("table", "start", "end", "prefix", "limit", "page_token", "partitions", "options")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    table: str
    start: bytes
    end: bytes
    prefix: bytes
    limit: int
    page_token: str
    partitions: _containers.RepeatedScalarFieldContainer[int]
    options: ReadOptions
    def __init__(self, table: _Optional[str] = ..., start: _Optional[bytes] = ..., end: _Optional[bytes] = ..., prefix: _Optional[bytes] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ..., partitions: _Optional[_Iterable[int]] = ..., options: _Optional[_Union[ReadOptions, _Mapping]] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("key", "value", "partition")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    partition: int
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., partition: _Optional[int] = ...) -> None: ...

class PartitionSource(_message.Message):
    __slots__ = ("partition", "served_by", "offset")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    partition: int
    served_by: str
    offset: int
    def __init__(self, partition: _Optional[int] = ..., served_by: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class ScanResponse(_message.Message):
    __slots__ = ("entries", "next_page_token", "sources")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    next_page_token: str
    sources: _containers.RepeatedCompositeFieldContainer[PartitionSource]
    def __init__(self, entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[PartitionSource, _Mapping]]] = ...) -> None: ...

class LocateRequest(_message.Message):
    __slots__ = ("table", "key")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    table: str
    key: bytes
    def __init__(self, table: _Optional[str] = ..., key: _Optional[bytes] = ...) -> None: ...

class Replica(_message.Message):
    __slots__ = ("member_id", "endpoint", "role", "kind", "state", "applied_offset", "lag")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    endpoint: str
    role: str
    kind: str
    state: str
    applied_offset: int
    lag: int
    def __init__(self, member_id: _Optional[str] = ..., endpoint: _Optional[str] = ..., role: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[str] = ..., applied_offset: _Optional[int] = ..., lag: _Optional[int] = ...) -> None: ...

class LocateResponse(_message.Message):
    __slots__ = ("table", "partition", "replicas")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    table: TableInfo
    partition: int
    replicas: _containers.RepeatedCompositeFieldContainer[Replica]
    def __init__(self, table: _Optional[_Union[TableInfo, _Mapping]] = ..., partition: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[Replica, _Mapping]]] = ...) -> None: ...

class ListTablesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TableInfo(_message.Message):
    __slots__ = ("name", "key_codec", "value_codec", "partitioner", "partition_count", "running_partitions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_CODEC_FIELD_NUMBER: _ClassVar[int]
    VALUE_CODEC_FIELD_NUMBER: _ClassVar[int]
    PARTITIONER_FIELD_NUMBER: _ClassVar[int]
    PARTITION_COUNT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    key_codec: str
    value_codec: str
    partitioner: str
    partition_count: int
    running_partitions: int
    def __init__(self, name: _Optional[str] = ..., key_codec: _Optional[str] = ..., value_codec: _Optional[str] = ..., partitioner: _Optional[str] = ..., partition_count: _Optional[int] = ..., running_partitions: _Optional[int] = ...) -> None: ...

class ListTablesResponse(_message.Message):
    __slots__ = ("tables",)
    TABLES_FIELD_NUMBER: _ClassVar[int]
    tables: _containers.RepeatedCompositeFieldContainer[TableInfo]
    def __init__(self, tables: _Optional[_Iterable[_Union[TableInfo, _Mapping]]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("table", "keys", "prefix", "start", "end", "from_offsets", "snapshot", "partitions", "options")
    class FromOffsetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    table: str
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    prefix: bytes
    start: bytes
    end: bytes
    from_offsets: _containers.ScalarMap[int, int]
    snapshot: bool
    partitions: _containers.RepeatedScalarFieldContainer[int]
    options: ReadOptions
    def __init__(self, table: _Optional[str] = ..., keys: _Optional[_Iterable[bytes]] = ..., prefix: _Optional[bytes] = ..., start: _Optional[bytes] = ..., end: _Optional[bytes] = ..., from_offsets: _Optional[_Mapping[int, int]] = ..., snapshot: _Optional[bool] = ..., partitions: _Optional[_Iterable[int]] = ..., options: _Optional[_Union[ReadOptions, _Mapping]] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("key", "value", "deleted", "partition", "offset")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    deleted: bool
    partition: int
    offset: int
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., deleted: _Optional[bool] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("rows", "changes", "positions", "sources")
    class PositionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[Entry]
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    positions: _containers.ScalarMap[int, int]
    sources: _containers.RepeatedCompositeFieldContainer[PartitionSource]
    def __init__(self, rows: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ..., positions: _Optional[_Mapping[int, int]] = ..., sources: _Optional[_Iterable[_Union[PartitionSource, _Mapping]]] = ...) -> None: ...
