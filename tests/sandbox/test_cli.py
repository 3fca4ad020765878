"""`python -m sandbox keygen` and the SANDBOX_* configuration, without a running server."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from sandbox.config import ConfigError, load_config
from sandbox.keys import parse_registered_keys
from tests.sandbox.conftest import sign


def test_keygen_prints_matching_env_lines_for_both_sides() -> None:
    output = subprocess.run(
        [sys.executable, "-m", "sandbox", "keygen", "--port", "9123"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    env = dict(line.split("=", 1) for line in output.splitlines())

    assert all("=" in line and not line.startswith("#") for line in output.splitlines())
    assert env["RUSTORE_API_URL"] == "http://127.0.0.1:9123"
    assert env["RUSTORE_APP_ID"] == env["SANDBOX_APP_ID"]
    assert env["RUSTORE_PACKAGE_NAME"] == env["SANDBOX_PACKAGE_NAME"]
    assert env["RUSTORE_WEBHOOK_KEY"] == env["SANDBOX_WEBHOOK_KEY"]
    assert env["RUSTORE_SANDBOX_WEBHOOK_KEY"] == env["SANDBOX_TEST_WEBHOOK_KEY"]
    assert env["RUSTORE_WEBHOOK_KEY"] != env["RUSTORE_SANDBOX_WEBHOOK_KEY"]
    assert len(base64.b64decode(env["RUSTORE_WEBHOOK_KEY"])) == 32
    assert not env["RUSTORE_PRIVATE_KEY"].startswith("-----")
    public = parse_registered_keys(env["SANDBOX_KEYS"])[env["RUSTORE_KEY_ID"]]
    signature = base64.b64decode(sign(env["RUSTORE_PRIVATE_KEY"], "message"))
    public.verify(signature, b"message", padding.PKCS1v15(), hashes.SHA512())


def test_config_reads_prefixed_variables() -> None:
    config = load_config(
        {"SANDBOX_PORT": "9001", "SANDBOX_NOTIFY_RETRY_SECONDS": "0.5, 2,10", "PORT": "1"}
    )

    assert config.port == 9001
    assert config.notify_retry_seconds == (0.5, 2.0, 10.0)
    assert load_config({}).port == 8090


@pytest.mark.parametrize("name", ["SANDBOX_PORT", "SANDBOX_NOTIFY_STATUS_CASE"])
def test_bad_config_names_the_variable(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({name: "nonsense"})
