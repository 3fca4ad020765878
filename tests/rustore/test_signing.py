"""The auth signature verifies with the openssl CLI, from a key made by openssl itself."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.rustore import RuStoreAuthError
from core.rustore.signing import auth_request_body, auth_timestamp, load_private_key


@pytest.fixture(scope="module")
def openssl_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(Console-style base64 PKCS#8 DER private key, public key PEM path), made by openssl."""
    folder = tmp_path_factory.mktemp("openssl")
    pem, der, pub = folder / "key.pem", folder / "key.der", folder / "pub.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            pem,
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", pem, "-outform", "DER", "-out", der],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "pkey", "-in", pem, "-pubout", "-out", pub], check=True, capture_output=True
    )
    return base64.b64encode(der.read_bytes()).decode(), pub


def openssl_verify(
    pub: Path, folder: Path, message: str, signature_b64: str
) -> subprocess.CompletedProcess[bytes]:
    (folder / "msg.txt").write_bytes(message.encode())
    (folder / "sig.bin").write_bytes(base64.b64decode(signature_b64))
    return subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha512",
            "-verify",
            pub,
            "-signature",
            folder / "sig.bin",
            folder / "msg.txt",
        ],
        capture_output=True,
        check=False,
    )


def test_signature_verifies_with_openssl(openssl_key: tuple[str, Path], tmp_path: Path) -> None:
    console_key, pub = openssl_key
    body = auth_request_body(load_private_key(console_key), "8421")

    result = openssl_verify(pub, tmp_path, body["keyId"] + body["timestamp"], body["signature"])

    assert result.returncode == 0, result.stderr
    assert b"Verified OK" in result.stdout


def test_openssl_rejects_the_signature_for_another_message(
    openssl_key: tuple[str, Path], tmp_path: Path
) -> None:
    console_key, pub = openssl_key
    body = auth_request_body(load_private_key(console_key), "8421")

    result = openssl_verify(pub, tmp_path, "8422" + body["timestamp"], body["signature"])

    assert result.returncode != 0


def test_key_with_line_breaks_from_copy_paste_loads(openssl_key: tuple[str, Path]) -> None:
    console_key, _ = openssl_key
    wrapped = "\n".join(console_key[i : i + 64] for i in range(0, len(console_key), 64))

    assert load_private_key(wrapped).key_size == 2048


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"not a key").decode(), ""])
def test_bad_key_is_an_auth_error_that_does_not_echo_the_key(bad: str) -> None:
    with pytest.raises(RuStoreAuthError, match="PKCS#8") as caught:
        load_private_key(bad)

    assert bad not in str(caught.value) or not bad


def test_timestamp_has_milliseconds_and_an_offset() -> None:
    moment = datetime(2024, 6, 18, 11, 49, 8, 290123, tzinfo=timezone(timedelta(hours=3)))

    assert auth_timestamp(moment) == "2024-06-18T11:49:08.290+03:00"
    now = auth_timestamp()
    assert now.endswith("+00:00")
    assert abs((datetime.fromisoformat(now) - datetime.now(UTC)).total_seconds()) < 5


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        auth_timestamp(datetime(2024, 1, 1))
