"""Codecs turn keys and values into bytes and back.

A :class:`Codec` has a stable ``name`` (announced to clients, so they can decode what they
read), ``encode(value) -> bytes`` and ``decode(data) -> value``. The codecs here are
instantiated by users, e.g. ``goka.input("clicks", codec.String(), count)``:

==================  ==========================  =============================================
codec               name                        wire format
==================  ==========================  =============================================
``Bytes()``         ``bytes``                   the bytes as they are
``String()``        ``string``                  UTF-8
``Int64()``         ``int64``                   decimal ASCII, as Go Goka's ``codec.Int64``
``JSON()``          ``json``                    compact JSON text, UTF-8
``Protobuf(cls)``   ``protobuf:<message name>`` the protobuf wire format of message ``cls``
==================  ==========================  =============================================

Every failure raises :class:`~goka.errors.CodecError` naming the codec, what it was given and
why. ``None`` is never encoded: a ``None`` value is a tombstone (a delete), which the callers
write without a codec.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from google.protobuf.message import DecodeError, EncodeError, Message

from goka.errors import CodecError, ConfigError

__all__ = ["JSON", "Bytes", "Codec", "Int64", "Protobuf", "String", "check_codec"]

T = TypeVar("T")
M = TypeVar("M", bound=Message)

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_DECIMAL = re.compile(rb"-?[0-9]+")
_PREVIEW_BYTES = 24


@runtime_checkable
class Codec(Protocol[T]):
    """Encodes values of type ``T`` to bytes and decodes them back.

    ``name`` identifies the wire format (``"string"``, ``"protobuf:pkg.Message"``, ...); two
    codecs with the same name read each other's bytes.
    """

    @property
    def name(self) -> str: ...

    def encode(self, value: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


def check_codec(where: str, codec: object) -> None:
    """Raises ConfigError unless ``codec`` is a codec instance (a class such as
    ``codec.String`` has the methods too, but no instance to call them on)."""
    if isinstance(codec, type) or not isinstance(codec, Codec):
        raise ConfigError(
            f"{where}: {codec!r} is not a codec; pass an instance such as goka.codec.String()"
        )


def _describe_value(value: object) -> str:
    return f"a value of type {type(value).__qualname__}"


def _describe_data(data: object) -> str:
    if isinstance(data, bytes | bytearray | memoryview):
        whole = bytes(data)
        more = "..." if len(whole) > _PREVIEW_BYTES else ""
        return f"{len(whole)} bytes {whole[:_PREVIEW_BYTES]!r}{more}"
    return f"a value of type {type(data).__qualname__}"


def _encode_error(codec: str, value: object, reason: str) -> CodecError:
    return CodecError(f"{codec} codec cannot encode {_describe_value(value)}: {reason}")


def _decode_error(codec: str, data: object, reason: str) -> CodecError:
    if data is None:
        reason += " (a None value is a tombstone: handle it before decoding)"
    return CodecError(f"{codec} codec cannot decode {_describe_data(data)}: {reason}")


def _none_error(codec: str) -> CodecError:
    return CodecError(
        f"{codec} codec cannot encode None: None is a tombstone (a delete), not a value. "
        "Use ctx.delete() in a processor, or emit None as the value, to write a tombstone"
    )


class _NamedCodec:
    """Equality, hashing and repr by codec name."""

    __slots__ = ()

    @property
    def name(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _NamedCodec):
            return NotImplemented
        return type(self) is type(other) and self.name == other.name

    def __hash__(self) -> int:
        return hash((type(self), self.name))


class Bytes(_NamedCodec):
    """Raw bytes, passed through. Encodes ``bytes``, ``bytearray`` or ``memoryview``."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return "bytes"

    def encode(self, value: bytes | bytearray | memoryview) -> bytes:
        if type(value) is bytes:
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        if value is None:
            raise _none_error(self.name)
        hint = "; use codec.String() for str" if isinstance(value, str) else ""
        raise _encode_error(self.name, value, f"expected bytes, bytearray or memoryview{hint}")

    def decode(self, data: bytes) -> bytes:
        if type(data) is bytes:
            return data
        if isinstance(data, bytearray | memoryview):
            return bytes(data)
        raise _decode_error(self.name, data, "expected bytes")


class String(_NamedCodec):
    """A ``str``, as UTF-8."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return "string"

    def encode(self, value: str) -> bytes:
        if not isinstance(value, str):
            if value is None:
                raise _none_error(self.name)
            hint = (
                "; use codec.Bytes() for bytes"
                if isinstance(value, bytes | bytearray | memoryview)
                else ""
            )
            raise _encode_error(self.name, value, f"expected str{hint}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _encode_error(self.name, value, f"not encodable as UTF-8: {exc}") from exc

    def decode(self, data: bytes) -> str:
        try:
            return data.decode()  # UTF-8; half the time of str(data, "utf-8")
        except UnicodeDecodeError as exc:
            raise _decode_error(self.name, data, f"not valid UTF-8: {exc}") from exc
        except AttributeError as exc:  # not bytes or bytearray
            if isinstance(data, memoryview):
                return self.decode(bytes(data))
            raise _decode_error(self.name, data, "expected bytes") from exc


class Int64(_NamedCodec):
    """A signed 64-bit ``int`` as decimal ASCII text (``b"-42"``), like Go Goka's codec.Int64.

    Encoding rejects ``bool``, non-ints and ints outside ``[-2**63, 2**63 - 1]``. Decoding
    accepts only an optional ``-`` followed by ASCII digits (no whitespace, ``+`` or ``_``).
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        return "int64"

    def encode(self, value: int) -> bytes:
        # the common case first, with the bounds as constants: _INT64_MIN <= value <= _INT64_MAX
        if type(value) is int and -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
            return b"%d" % value
        if not isinstance(value, int) or isinstance(value, bool):
            if value is None:
                raise _none_error(self.name)
            raise _encode_error(self.name, value, "expected an int (bool is not accepted)")
        if not _INT64_MIN <= value <= _INT64_MAX:
            shown = value if value.bit_length() <= 128 else f"an int of {value.bit_length()} bits"
            raise _encode_error(
                self.name, value, f"{shown} is outside the signed 64-bit range [-2**63, 2**63-1]"
            )
        return b"%d" % value

    def decode(self, data: bytes) -> int:
        # ASCII digits only, and at most 18 of them: within range, and int() accepts them as
        # they are (isdigit() refuses the whitespace, '+' and '_' that int() would take)
        if type(data) is bytes and len(data) <= 18 and data.isdigit():
            return int(data)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise _decode_error(self.name, data, "expected bytes")
        text = bytes(data)
        if _DECIMAL.fullmatch(text) is None:
            raise _decode_error(
                self.name, data, "expected decimal ASCII digits with an optional leading '-'"
            )
        # More than 19 significant digits is out of range (and int() refuses > 4300 digits).
        too_long = len(text.lstrip(b"-").lstrip(b"0")) > 19
        value = 0 if too_long else int(text)
        if too_long or not _INT64_MIN <= value <= _INT64_MAX:
            raise _decode_error(self.name, data, "outside the signed 64-bit range")
        return value


class JSON(_NamedCodec):
    """Any JSON-serialisable value, as compact JSON text in UTF-8 (non-ASCII not escaped).

    Encoding rejects NaN and infinities (not valid JSON) and values ``json`` cannot serialise.
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        return "json"

    def encode(self, value: Any) -> bytes:
        if value is None:
            raise _none_error(self.name)
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            return text.encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise _encode_error(self.name, value, str(exc)) from exc

    def decode(self, data: bytes) -> Any:
        try:
            return json.loads(str(data, "utf-8"))
        except UnicodeDecodeError as exc:
            raise _decode_error(self.name, data, f"not valid UTF-8: {exc}") from exc
        except (ValueError, RecursionError) as exc:
            raise _decode_error(self.name, data, f"not valid JSON: {exc}") from exc
        except TypeError as exc:
            raise _decode_error(self.name, data, "expected bytes") from exc


class Protobuf(_NamedCodec, Generic[M]):
    """Protobuf messages of one type, in the protobuf wire format.

    ``Protobuf(table_pb2.Row)``; the name is ``protobuf:<full message name>``, e.g.
    ``protobuf:viewsvc.v1.Row``. Encoding accepts only instances of ``message_class``.
    """

    __slots__ = ("_message_class", "_name")

    def __init__(self, message_class: type[M]) -> None:
        if not (isinstance(message_class, type) and issubclass(message_class, Message)):
            raise ConfigError(
                f"Protobuf codec needs a generated protobuf message class, got "
                f"{message_class!r}: pass e.g. Protobuf(my_pb2.MyMessage), not an instance "
                "or a module"
            )
        descriptor = getattr(message_class, "DESCRIPTOR", None)
        full_name = getattr(descriptor, "full_name", None)
        if not isinstance(full_name, str):
            raise ConfigError(
                f"Protobuf codec needs a generated protobuf message class, got "
                f"{message_class!r}, which has no message descriptor: pass a class from a "
                "*_pb2 module"
            )
        self._message_class: type[M] = message_class
        self._name = f"protobuf:{full_name}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def message_class(self) -> type[M]:
        """The message class this codec encodes and decodes."""
        return self._message_class

    def __repr__(self) -> str:
        return f"Protobuf({self._message_class.__module__}.{self._message_class.__qualname__})"

    def encode(self, value: M) -> bytes:
        if not isinstance(value, self._message_class):
            if value is None:
                raise _none_error(self.name)
            raise _encode_error(
                self.name, value, f"expected a {self._name.removeprefix('protobuf:')} message"
            )
        try:
            return value.SerializeToString()
        except EncodeError as exc:
            raise _encode_error(self.name, value, str(exc)) from exc

    def decode(self, data: bytes) -> M:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise _decode_error(self.name, data, "expected bytes")
        try:
            return self._message_class.FromString(bytes(data))
        except DecodeError as exc:
            raise _decode_error(self.name, data, f"not a valid message: {exc}") from exc


if TYPE_CHECKING:
    # Checked by mypy: every codec here satisfies the Codec protocol.
    _bytes: Codec[bytes] = Bytes()
    _string: Codec[str] = String()
    _int64: Codec[int] = Int64()
    _json: Codec[Any] = JSON()
