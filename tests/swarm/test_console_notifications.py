"""The supervisor's console hook against a real ThreadWeaver: each incident becomes a console notification when
the hook sends a gateway client's key (``console_notify_key_file``), and nothing is stored without one; over
HTTPS, ThreadWeaver's own CA (``console_notify_ca_file``) is what the supervisor's client trusts."""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from claw.swarm import config
from claw.swarm.alerts import ConsoleHook
from claw.swarm.service import tls_verify
from claw.swarm.store import Incident

from tests.threadweaver.console_notifications import KEY, listed, served_console

pytestmark = pytest.mark.anyio
INCIDENT = Incident("research", "stopped", "main process 41 is stopped", "killed and restarted", ("froze",), 1.0, 9)


@pytest.fixture
async def console(tmp_path, monkeypatch) -> AsyncIterator[str]:
    async with served_console(tmp_path, monkeypatch) as url:
        yield url


async def test_an_incident_reaches_the_console(console):
    async with httpx.AsyncClient(timeout=10) as http:
        await ConsoleHook(f"{console}/notifications", http, key=KEY).notify(INCIDENT, ttl=60)
        shown = await listed(console)
    assert [(n["source"], n["text"]) for n in shown] == [
        ("claw-swarm", "research: main process 41 is stopped: killed and restarted")
    ]
    assert shown[0]["detail"]["kind"] == "stopped" and shown[0]["detail"]["logs"] == ["froze"]


async def test_without_a_key_the_console_refuses_and_the_supervisor_goes_on(console, caplog):
    async with httpx.AsyncClient(timeout=10) as http:
        with caplog.at_level(logging.WARNING, logger="claw.swarm.alerts"):
            await ConsoleHook(f"{console}/notifications", http).notify(INCIDENT, ttl=60)
        assert await listed(console) == []
    assert "console notification to" in caplog.text and "401" in caplog.text


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (CA file, certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.now(timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
        .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder().subject_name(name("threadweaver")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(2).not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    files = folder / "ca.crt", folder / "tw.crt", folder / "tw.key"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


async def test_over_https_the_console_ca_is_trusted(tmp_path, monkeypatch):
    ca, cert, key = certificates(tmp_path)
    worker = {"name": "research", "unit": "openclaw-worker@research.service", "health_url": "http://127.0.0.1:1/"}
    async with served_console(tmp_path, monkeypatch, ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        for ca_file, stored in ((None, 0), (ca, 1)):
            settings = config.parse(
                {"workers": [worker], "console_notify_url": f"{url}/notifications", "console_notify_ca_file": ca_file}
            )
            async with httpx.AsyncClient(verify=tls_verify(settings), timeout=10) as http:
                await ConsoleHook(settings.console_notify_url, http, key=KEY).notify(INCIDENT, ttl=60)
            # Without the CA (the system's trust store) the post was refused: nothing stored.
            assert len(await listed(url, verify=ssl.create_default_context(cafile=ca))) == stored
