"""testdata/vectors.json, the cases the clients of every language are tested against, is what
the Python code computes (``scripts/generate_vectors.py --check``), and reads back: every
encoding decodes to its value and every page token to its key."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from goka import codec
from goka.partitioner import fnv1a, murmur2
from tests.conftest import ROOT
from viewsvc.wire.scan_pages import decode_page_token, request_fingerprint

VECTORS: dict[str, Any] = json.loads((ROOT / "testdata" / "vectors.json").read_text())


def test_the_vectors_are_what_the_code_computes() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/generate_vectors.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_partitions_cover_empty_and_non_utf8_keys() -> None:
    keys = {bytes.fromhex(case["key_hex"]) for case in VECTORS["partitions"]}
    assert b"" in keys and any(not _utf8(key) for key in keys)
    for case in VECTORS["partitions"]:
        key, count = bytes.fromhex(case["key_hex"]), case["partition_count"]
        assert (murmur2(key, count), fnv1a(key, count)) == (case["murmur2"], case["fnv1a"])


@pytest.mark.parametrize(
    ("name", "codec_"),
    [("int64", codec.Int64()), ("string", codec.String()), ("json", codec.JSON())],
)
def test_every_encoding_decodes_to_its_value(name: str, codec_: codec.Codec[Any]) -> None:
    for case in VECTORS["codecs"][name]:
        value = int(case["value"]) if name == "int64" else case["value"]
        assert codec_.decode(bytes.fromhex(case["encoded_hex"])) == value


def test_every_page_token_names_its_key() -> None:
    for case in VECTORS["page_tokens"]:
        fingerprint = request_fingerprint(
            bytes.fromhex(case["start_hex"]),
            bytes.fromhex(case["end_hex"]),
            bytes.fromhex(case["prefix_hex"]),
            case["partitions"],
        )
        key = decode_page_token(case["table"], fingerprint, case["token"])
        assert key == bytes.fromhex(case["last_key_hex"])


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
