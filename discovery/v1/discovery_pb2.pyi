import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_PROCESSOR: _ClassVar[Role]
    ROLE_VIEW: _ClassVar[Role]
    ROLE_ROUTER: _ClassVar[Role]

class PartitionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTITION_KIND_UNSPECIFIED: _ClassVar[PartitionKind]
    PARTITION_KIND_ACTIVE: _ClassVar[PartitionKind]
    PARTITION_KIND_STANDBY: _ClassVar[PartitionKind]
    PARTITION_KIND_REPLICA: _ClassVar[PartitionKind]

class PartitionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTITION_STATE_UNSPECIFIED: _ClassVar[PartitionState]
    PARTITION_STATE_RECOVERING: _ClassVar[PartitionState]
    PARTITION_STATE_RUNNING: _ClassVar[PartitionState]
ROLE_UNSPECIFIED: Role
ROLE_PROCESSOR: Role
ROLE_VIEW: Role
ROLE_ROUTER: Role
PARTITION_KIND_UNSPECIFIED: PartitionKind
PARTITION_KIND_ACTIVE: PartitionKind
PARTITION_KIND_STANDBY: PartitionKind
PARTITION_KIND_REPLICA: PartitionKind
PARTITION_STATE_UNSPECIFIED: PartitionState
PARTITION_STATE_RECOVERING: PartitionState
PARTITION_STATE_RUNNING: PartitionState

class Announcement(_message.Message):
    __slots__ = ("member_id", "role", "endpoint", "group", "generation", "sequence", "heartbeat_interval", "emitted_at", "tables")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    EMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    role: Role
    endpoint: str
    group: str
    generation: int
    sequence: int
    heartbeat_interval: _duration_pb2.Duration
    emitted_at: _timestamp_pb2.Timestamp
    tables: _containers.RepeatedCompositeFieldContainer[TableHoldings]
    def __init__(self, member_id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., endpoint: _Optional[str] = ..., group: _Optional[str] = ..., generation: _Optional[int] = ..., sequence: _Optional[int] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., emitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tables: _Optional[_Iterable[_Union[TableHoldings, _Mapping]]] = ...) -> None: ...

class TableHoldings(_message.Message):
    __slots__ = ("topic", "partitioner", "partition_count", "key_codec", "value_codec", "partitions")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITIONER_FIELD_NUMBER: _ClassVar[int]
    PARTITION_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEY_CODEC_FIELD_NUMBER: _ClassVar[int]
    VALUE_CODEC_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partitioner: str
    partition_count: int
    key_codec: str
    value_codec: str
    partitions: _containers.RepeatedCompositeFieldContainer[PartitionHolding]
    def __init__(self, topic: _Optional[str] = ..., partitioner: _Optional[str] = ..., partition_count: _Optional[int] = ..., key_codec: _Optional[str] = ..., value_codec: _Optional[str] = ..., partitions: _Optional[_Iterable[_Union[PartitionHolding, _Mapping]]] = ...) -> None: ...

class PartitionHolding(_message.Message):
    __slots__ = ("partition", "kind", "state", "applied_offset", "lag")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    partition: int
    kind: PartitionKind
    state: PartitionState
    applied_offset: int
    lag: int
    def __init__(self, partition: _Optional[int] = ..., kind: _Optional[_Union[PartitionKind, str]] = ..., state: _Optional[_Union[PartitionState, str]] = ..., applied_offset: _Optional[int] = ..., lag: _Optional[int] = ...) -> None: ...

class MembersRequest(_message.Message):
    __slots__ = ("table",)
    TABLE_FIELD_NUMBER: _ClassVar[int]
    table: str
    def __init__(self, table: _Optional[str] = ...) -> None: ...

class MembersResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...

class WatchMembersRequest(_message.Message):
    __slots__ = ("table",)
    TABLE_FIELD_NUMBER: _ClassVar[int]
    table: str
    def __init__(self, table: _Optional[str] = ...) -> None: ...

class WatchMembersResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("announcement", "last_heard")
    ANNOUNCEMENT_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARD_FIELD_NUMBER: _ClassVar[int]
    announcement: Announcement
    last_heard: _timestamp_pb2.Timestamp
    def __init__(self, announcement: _Optional[_Union[Announcement, _Mapping]] = ..., last_heard: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
