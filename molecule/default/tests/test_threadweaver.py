"""ThreadWeaver on claw: HTTPS from the cluster CA, the appliance's own password, a real reply from crush, and
threads encrypted at rest."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import testinfra
import yaml

from tests.nodes import CONSOLE as BASE
from tests.nodes import CONSOLE_CA as CA
from tests.nodes import console_call as call
from tests.nodes import console_login

MODEL = "gemma3-270m"
# The demo model's reply settings, as the appliance defines them.
REPLY = yaml.safe_load((Path(__file__).resolve().parents[3] / "playbooks/group_vars/all.yml").read_text())[
    "crush_models"
][0]["reply"]


@pytest.fixture(scope="module")
def token(claw) -> str:
    return console_login(claw)


def test_console_runs_hardened_as_its_own_user(claw):
    assert claw.service("threadweaver").is_running and claw.service("threadweaver").is_enabled
    props = claw.check_output("systemctl show threadweaver -p User -p NoNewPrivileges -p ProtectSystem")
    assert "User=threadweaver" in props and "NoNewPrivileges=yes" in props and "ProtectSystem=strict" in props


def test_secrets_are_per_appliance_and_private(claw):
    password = claw.file("/etc/threadweaver/console-password")
    assert (password.user, password.group, password.mode) == ("root", "root", 0o600)
    assert len(password.content_string.strip()) >= 20
    hashed = claw.file("/etc/threadweaver/password-hash")
    assert (hashed.user, hashed.group, hashed.mode) == ("root", "threadweaver", 0o640)
    assert hashed.content_string.startswith("scrypt$")
    key = claw.file("/etc/threadweaver/store.key")
    assert (key.user, key.mode) == ("threadweaver", 0o600)
    assert re.fullmatch(r"[0-9a-f]{64}", key.content_string.strip())
    # The service user cannot read the plain password.
    assert claw.run("runuser -u threadweaver -- cat /etc/threadweaver/console-password").rc != 0


def test_https_certificate_is_from_the_cluster_ca(claw):
    ca = claw.file(CA)
    assert ca.exists and claw.file("/etc/claw/pki/ca.key").mode == 0o600
    verify = claw.run(f"openssl verify -CAfile {CA} /etc/claw/pki/threadweaver.crt")
    assert verify.rc == 0, verify.stdout + verify.stderr
    status, body = call(claw, "GET", "/healthz")
    assert (status, body["status"]) == (200, "ok")
    # Without the CA, the certificate is not trusted (it is not a public one), and plain HTTP gets no answer.
    assert claw.run(f"curl -fsS --max-time 5 --cacert {CA} {BASE}/healthz").rc == 0
    assert claw.run(f"curl -fsS --max-time 5 {BASE}/healthz").rc == 60  # the system trust store: unknown CA
    assert claw.run("curl -fsS --max-time 5 http://molecule-claw:8600/healthz").rc != 0


def test_lan_reaches_the_login_but_nothing_without_it(claw):
    outsider = testinfra.get_host("nsenter://molecule-outsider")
    status, _ = call(outsider, "GET", "/healthz", cafile="")
    assert status == 200, "the console is meant to be reachable on the LAN"
    status, body = call(outsider, "GET", "/threads", cafile="")
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    status, _ = call(outsider, "POST", "/login", {"password": "not-this-appliance"}, cafile="")
    assert status == 401


def test_a_message_is_answered_by_crush_and_stored_encrypted(claw, token):
    status, providers = call(claw, "GET", "/providers", token=token)
    assert status == 200 and "crush" in [p["name"] for p in providers]
    status, thread = call(claw, "POST", "/threads", {"provider": "crush", "model": MODEL, "title": "molecule"}, token)
    assert status == 201, thread
    marker = "zebra-quokka-7431"
    started = time.monotonic()
    status, turn = call(
        claw, "POST", f"/threads/{thread['id']}/messages", {"content": f"Say hello. ({marker})"}, token=token
    )
    elapsed = time.monotonic() - started
    assert status == 200, turn
    reply = turn["reply"]
    assert reply["role"] == "assistant" and reply["provider"] == "crush" and reply["model"] == MODEL
    assert reply["content"].strip() and reply["tokens_out"] > 0
    # The first message answers in seconds, within the demo model's reply limit (it was 1,024 tokens in 48 s).
    assert reply["tokens_out"] <= REPLY["max_tokens"], reply
    assert elapsed < 20, f"the first reply took {elapsed:.1f} s"
    status, hits = call(claw, "GET", f"/search?q={marker}", token=token)
    assert status == 200 and hits and hits[0]["thread_id"] == thread["id"]
    # Encrypted at rest: the marker is in no file of the store (database, WAL).
    found = claw.run(f"grep -rl {marker} /var/lib/threadweaver")
    assert found.rc == 1, f"plain text found in {found.stdout}"


def test_a_broken_config_is_refused_by_the_check(claw):
    claw.check_output("sed 's/kind: crush/kind: bard/' /etc/threadweaver/config.yml > /tmp/tw-broken.yml")
    python = claw.check_output("dirname $(readlink -f /usr/local/bin/claw)") + "/python"
    result = claw.run(f"{python} -m claw.threadweaver check --config /tmp/tw-broken.yml")
    assert result.rc != 0 and "kind" in result.stderr
