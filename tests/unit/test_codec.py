"""Unit tests for goka.codec: round trips, wire formats, limits and error messages."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pb2, timestamp_pb2, wrappers_pb2

from goka import codec
from goka.codec import JSON, Bytes, Codec, Int64, Protobuf, String
from goka.errors import CodecError, ConfigError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

ALL_CODECS: list[Codec[Any]] = [
    Bytes(),
    String(),
    Int64(),
    JSON(),
    Protobuf(timestamp_pb2.Timestamp),
]


def test_exported_names() -> None:
    assert sorted(codec.__all__) == [
        "Bytes",
        "Codec",
        "Int64",
        "JSON",
        "Protobuf",
        "String",
        "check_codec",
    ]


def test_names() -> None:
    assert [c.name for c in ALL_CODECS] == [
        "bytes",
        "string",
        "int64",
        "json",
        "protobuf:google.protobuf.Timestamp",
    ]


@pytest.mark.parametrize("c", ALL_CODECS, ids=lambda c: c.name)
def test_codecs_satisfy_the_protocol(c: Codec[Any]) -> None:
    assert isinstance(c, Codec)


def test_equality_by_name() -> None:
    assert String() == String()
    assert hash(Int64()) == hash(Int64())
    assert String() != Bytes()
    assert Protobuf(timestamp_pb2.Timestamp) == Protobuf(timestamp_pb2.Timestamp)
    assert Protobuf(timestamp_pb2.Timestamp) != Protobuf(wrappers_pb2.StringValue)
    assert repr(Protobuf(timestamp_pb2.Timestamp)) == (
        "Protobuf(google.protobuf.timestamp_pb2.Timestamp)"
    )
    assert repr(JSON()) == "JSON()"


@pytest.mark.parametrize("c", ALL_CODECS, ids=lambda c: c.name)
def test_encoding_none_names_the_tombstone(c: Codec[Any]) -> None:
    with pytest.raises(CodecError, match=r"cannot encode None: None is a tombstone") as info:
        c.encode(None)
    assert "ctx.delete()" in str(info.value)
    assert str(info.value).startswith(f"{c.name} codec")


@pytest.mark.parametrize("c", ALL_CODECS, ids=lambda c: c.name)
def test_decoding_none_is_a_codec_error(c: Codec[Any]) -> None:
    with pytest.raises(CodecError, match=r"cannot decode a value of type NoneType.*tombstone"):
        c.decode(None)  # type: ignore[arg-type]


# --- Bytes ----------------------------------------------------------------------------------


def test_bytes_round_trip() -> None:
    c = Bytes()
    for value in (b"", b"\x00\xff", bytes(range(256))):
        assert c.decode(c.encode(value)) == value
    assert c.encode(bytearray(b"ab")) == b"ab"
    assert type(c.encode(memoryview(b"ab"))) is bytes
    assert c.decode(bytearray(b"ab")) == b"ab"  # type: ignore[arg-type]


def test_bytes_rejects_str() -> None:
    with pytest.raises(CodecError, match=r"bytes codec cannot encode a value of type str: .*"):
        Bytes().encode("text")  # type: ignore[arg-type]
    with pytest.raises(CodecError, match=r"use codec.String\(\) for str"):
        Bytes().encode("text")  # type: ignore[arg-type]
    with pytest.raises(CodecError, match=r"type int"):
        Bytes().encode(5)  # type: ignore[arg-type]


# --- String ---------------------------------------------------------------------------------


def test_string_round_trip() -> None:
    c = String()
    for value in ("", "hello", "grüße, 世界 🙂"):
        assert c.decode(c.encode(value)) == value
    assert c.encode("ü") == b"\xc3\xbc"
    assert c.decode(memoryview(b"ab")) == "ab"  # type: ignore[arg-type]


def test_string_errors() -> None:
    with pytest.raises(CodecError, match=r"string codec cannot encode a value of type bytes"):
        String().encode(b"x")  # type: ignore[arg-type]
    with pytest.raises(CodecError, match=r"use codec.Bytes\(\) for bytes"):
        String().encode(b"x")  # type: ignore[arg-type]
    with pytest.raises(CodecError, match=r"not encodable as UTF-8") as enc:
        String().encode("\ud800")  # lone surrogate
    assert isinstance(enc.value.__cause__, UnicodeEncodeError)
    with pytest.raises(CodecError, match=r"cannot decode 3 bytes b'a\\xffb': not valid UTF-8"):
        String().decode(b"a\xffb")


def test_decode_error_shows_a_short_prefix() -> None:
    data = b"\xff" + b"x" * 100
    with pytest.raises(CodecError) as info:
        String().decode(data)
    message = str(info.value)
    assert "101 bytes b'\\xffxxxxxxxxxxxxxxxxxxxxxxx'..." in message
    assert "x" * 30 not in message


# --- Int64 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, b"0"),
        (5, b"5"),
        (-5, b"-5"),
        (1234567890, b"1234567890"),
        (INT64_MAX, b"9223372036854775807"),
        (INT64_MIN, b"-9223372036854775808"),
    ],
)
def test_int64_wire_format(value: int, wire: bytes) -> None:
    assert Int64().encode(value) == wire
    assert Int64().decode(wire) == value


def test_int64_decode_accepts_what_go_parse_int_accepts() -> None:
    assert Int64().decode(b"007") == 7
    assert Int64().decode(b"-0") == 0
    assert Int64().decode(b"0" * 40 + b"1") == 1
    assert Int64().decode(bytearray(b"12")) == 12  # type: ignore[arg-type]


@pytest.mark.parametrize("digits", [17, 18, 19])
def test_int64_round_trips_on_both_sides_of_the_short_path(digits: int) -> None:
    largest = min(int(b"9" * digits), INT64_MAX)
    for text in (b"%d" % largest, b"1" + b"0" * (digits - 1), b"0" * digits, b"-%d" % largest):
        assert Int64().decode(text) == int(text)
        assert Int64().encode(int(text)) == str(int(text)).encode()


@pytest.mark.parametrize(
    "value", [INT64_MAX + 1, INT64_MIN - 1, 10**30, pytest.param(-(10**5000), id="huge")]
)
def test_int64_encode_range(value: int) -> None:
    with pytest.raises(CodecError, match=r"int64 codec .* outside the signed 64-bit range"):
        Int64().encode(value)


@pytest.mark.parametrize("value", [True, False, 1.0, "5", b"5", [5]])
def test_int64_encode_rejects_non_ints(value: object) -> None:
    with pytest.raises(CodecError, match=r"int64 codec cannot encode a value of type"):
        Int64().encode(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [b"", b"-", b" 5", b"5 ", b"5\n", b"+5", b"1_000", b"0x10", b"1e3", b"5.0", b"--5", b"abc",
     "٣".encode(), b"\xff"],
)  # fmt: skip
def test_int64_decode_rejects_non_decimal(data: bytes) -> None:
    with pytest.raises(CodecError, match=r"int64 codec cannot decode .*: expected decimal ASCII"):
        Int64().decode(data)


@pytest.mark.parametrize(
    "data", [b"9223372036854775808", b"-9223372036854775809", b"9" * 25, b"1" * 5000]
)
def test_int64_decode_range(data: bytes) -> None:
    with pytest.raises(CodecError, match=r"outside the signed 64-bit range"):
        Int64().decode(data)


def test_int64_accepts_int_subclasses() -> None:
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    assert Int64().encode(Level.HIGH) == b"3"


# --- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [0, -1.5, "text", True, False, [], {}, [1, "a", None], {"a": {"b": [1, 2]}, "ü": "🙂"}],
)
def test_json_round_trip(value: Any) -> None:
    assert JSON().decode(JSON().encode(value)) == value


def test_json_wire_format_is_compact_utf8() -> None:
    assert JSON().encode({"a": [1, 2], "b": "ü"}) == '{"a":[1,2],"b":"ü"}'.encode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "not JSON compliant"),
        ({"a": {1, 2}}, "set is not JSON serializable"),
        ("\ud800", "surrogates not allowed"),
    ],
)
def test_json_encode_errors(value: Any, reason: str) -> None:
    with pytest.raises(CodecError, match=rf"json codec cannot encode a value of type .*{reason}"):
        JSON().encode(value)


def test_json_encode_circular() -> None:
    value: list[Any] = []
    value.append(value)
    with pytest.raises(CodecError, match=r"json codec cannot encode a value of type list"):
        JSON().encode(value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"{", "not valid JSON"), (b"", "not valid JSON"), (b'"\xff"', "not valid UTF-8")],
)
def test_json_decode_errors(data: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=rf"json codec cannot decode {len(data)} bytes .*{reason}"):
        JSON().decode(data)


# --- Protobuf -------------------------------------------------------------------------------


def test_protobuf_round_trip() -> None:
    c = Protobuf(timestamp_pb2.Timestamp)
    value = timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=5)
    wire = c.encode(value)
    assert wire == value.SerializeToString()
    decoded = c.decode(wire)
    assert isinstance(decoded, timestamp_pb2.Timestamp)
    assert decoded == value
    assert c.decode(b"") == timestamp_pb2.Timestamp()
    assert c.message_class is timestamp_pb2.Timestamp


@pytest.mark.parametrize("bad", [timestamp_pb2.Timestamp(), "Timestamp", timestamp_pb2, None, int])
def test_protobuf_needs_a_message_class(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"Protobuf codec needs a generated protobuf message"):
        Protobuf(bad)


def test_protobuf_rejects_the_abstract_message_base() -> None:
    from google.protobuf.message import Message

    with pytest.raises(ConfigError, match=r"no message descriptor"):
        Protobuf(Message)


def test_protobuf_encode_rejects_another_message_type() -> None:
    c = Protobuf(timestamp_pb2.Timestamp)
    with pytest.raises(
        CodecError,
        match=r"protobuf:google.protobuf.Timestamp codec cannot encode a value of type "
        r"StringValue: expected a google.protobuf.Timestamp message",
    ):
        c.encode(wrappers_pb2.StringValue(value="x"))  # type: ignore[arg-type]
    with pytest.raises(CodecError, match=r"type dict"):
        c.encode({"seconds": 1})  # type: ignore[arg-type]


def test_protobuf_encode_missing_required_field() -> None:
    c = Protobuf(descriptor_pb2.UninterpretedOption.NamePart)
    with pytest.raises(
        CodecError, match=r"type UninterpretedOption.NamePart: .*missing required"
    ) as info:
        c.encode(descriptor_pb2.UninterpretedOption.NamePart(name_part="x"))
    assert info.value.__cause__ is not None


def test_protobuf_decode_errors() -> None:
    c = Protobuf(timestamp_pb2.Timestamp)
    with pytest.raises(CodecError, match=r"cannot decode 2 bytes b'\\xff\\xff': not a valid"):
        c.decode(b"\xff\xff")
