"""The shared MCP runtime: per-tool metrics, the configuration file and `claw mcp` over HTTP and stdio."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from claw.mcp.files import build_server
from claw.mcp.registry import ConfigError, read_config, server_settings
from claw.mcp.runtime import UNKNOWN_TOOL, ToolMetrics
from mcp import Client, StdioServerParameters

from tests.mcp.keys import clients_yaml, keyed

pytestmark = pytest.mark.anyio


def sample(metrics: ToolMetrics, name: str, tool: str) -> float:
    value = metrics.registry.get_sample_value(name, {"server": "files", "tool": tool})
    return value or 0.0


async def test_metrics_count_calls_errors_and_latency_per_tool(layout):
    metrics = ToolMetrics()
    async with Client(metrics.instrument(build_server(layout.sandbox))) as client:
        assert not (await client.call_tool("sandbox_path", {})).is_error
        assert not (await client.call_tool("sandbox_path", {})).is_error
        assert (await client.call_tool("read_file", {"path": "../outside/secret.txt"})).is_error
        assert (await client.call_tool("no_such_tool", {})).is_error
    assert sample(metrics, "claw_mcp_tool_calls_total", "sandbox_path") == 2
    assert sample(metrics, "claw_mcp_tool_errors_total", "sandbox_path") == 0
    assert sample(metrics, "claw_mcp_tool_calls_total", "read_file") == 1
    assert sample(metrics, "claw_mcp_tool_errors_total", "read_file") == 1
    assert sample(metrics, "claw_mcp_tool_duration_seconds_count", "sandbox_path") == 2
    # An unknown name is counted under one label value, never as a new series.
    assert sample(metrics, "claw_mcp_tool_calls_total", UNKNOWN_TOOL) == 1
    assert sample(metrics, "claw_mcp_tool_calls_total", "no_such_tool") == 0


def test_config_refuses_unknown_servers_and_keys(tmp_path):
    config = tmp_path / "mcp.yml"
    config.write_text("servers:\n  lasers: {}\n")
    with pytest.raises(ConfigError, match="unknown MCP server 'lasers'"):
        read_config(config)
    config.write_text("servers:\n  files: {root: /tmp, colour: red}\n")
    with pytest.raises(ConfigError, match="server files: colour"):
        server_settings("files", read_config(config))
    config.write_text("metrics_port: 0\n")
    with pytest.raises(ConfigError, match="metrics_port"):
        read_config(config)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def claw_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from claw.cli import main; sys.exit(main())", *args]


@pytest.fixture
def served(layout, tmp_path: Path):
    """`claw mcp serve` with the files server and the metrics endpoint on free loopback ports."""
    port, metrics_port = free_port(), free_port()
    config = tmp_path / "mcp.yml"
    config.write_text(
        f"metrics_port: {metrics_port}\nservers:\n  files: {{port: {port}, root: '{layout.root}'}}\n" + clients_yaml()
    )
    process = subprocess.Popen(claw_command("mcp", "serve", "--config", str(config)), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1)
            break
        except httpx.TransportError:
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.1)
    yield process, port, metrics_port
    if process.poll() is None:
        process.kill()
    process.wait()


async def test_serve_answers_over_streamable_http_and_exports_metrics(served):
    process, port, metrics_port = served
    async with keyed(f"http://127.0.0.1:{port}/mcp") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert "read_file" in tools
        result = await client.call_tool("read_file", {"path": "docs/a.txt"})
        assert not result.is_error
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert 'claw_mcp_tool_calls_total{server="files",tool="read_file"} 1.0' in text
    # One SIGTERM stops every listener and the process exits cleanly (systemd's stop).
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


async def test_stdio_serves_one_server_to_an_external_process(layout):
    params = StdioServerParameters(
        command=sys.executable,
        args=claw_command("mcp", "files", "--stdio", "--set", f"root={layout.root}")[1:],
        env={**os.environ},
    )
    async with Client(params) as client:
        result = await client.call_tool("list_directory", {"path": ""})
    assert not result.is_error
    assert "docs" in [entry["name"] for entry in result.structured_content["entries"]]


def test_check_validates_every_enabled_server_without_serving(tmp_path, capsys):
    from claw.cli import main

    config = tmp_path / "mcp.yml"
    config.write_text(
        "metrics_port: 9709\nservers:\n"
        f"  files: {{port: 9705, root: '{tmp_path}'}}\n  time: {{port: 9704, database: '{tmp_path}/t.db'}}\n"
        + clients_yaml()
    )
    assert main(["mcp", "check", "--config", str(config)]) == 0
    assert "is valid (files, time)" in capsys.readouterr().out
    config.write_text("servers:\n  time: {zone: Mars/Olympus, max_pending: 0}\n")
    assert main(["mcp", "check", "--config", str(config)]) == 2
    assert "server time: max_pending" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("yaml_text", "argv", "expected"),
    [
        # The ports are the configuration's (rendered from appliance_services): over HTTP each must be there.
        ("servers:\n  time: {port: 9704}\n", ["check"], "metrics_port: required to serve over HTTP"),
        ("metrics_port: 9709\nservers:\n  time: {}\n", ["check"], "servers.time.port: required to serve time"),
        ("metrics_port: 9709\nservers:\n  time: {}\n", ["serve"], "servers.time.port: required to serve time"),
        ("metrics_port: 9709\n", ["time", "--http"], "servers.time.port: required to serve time over HTTP"),
        ("servers: {time: {port: 9704}}\n", ["time", "--http"], "metrics_port: required"),
    ],
)
def test_http_needs_the_configured_ports(tmp_path, capsys, yaml_text, argv, expected):
    from claw.cli import main

    config = tmp_path / "mcp.yml"
    config.write_text(yaml_text)
    assert main(["mcp", *argv, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert f"set it in {config}" in err  # where to put it
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("yaml_text", "argv", "expected"),
    [
        pytest.param("servers: {}\n", ["serve"], "no servers are enabled", id="serve-without-servers"),
        pytest.param(
            "metrics_port: 9709\nservers:\n  time: {port: 9709}\n",
            ["check"],
            "servers metrics_port and time share port 9709; each needs its own",
            id="server-on-the-metrics-port",
        ),
        pytest.param(
            "metrics_port: 9709\n",
            ["time", "--http", "--set", "zone=UTC"],
            "or with --set port=PORT",  # one server over HTTP: --set port is a way out
            id="one-server-names-set-port",
        ),
    ],
)
def test_a_configuration_it_cannot_serve_is_a_clear_error(tmp_path, capsys, yaml_text, argv, expected):
    from claw.cli import main

    config = tmp_path / "mcp.yml"
    config.write_text(yaml_text)
    assert main(["mcp", *argv, "--config", str(config)]) == 2
    assert expected in capsys.readouterr().err


def test_stdio_needs_no_port_and_no_file(tmp_path, monkeypatch):
    """A desktop client's `claw mcp NAME --stdio`: no /etc/claw/mcp.yml, no port, the settings still validate."""
    from claw.mcp import servers
    from claw.mcp.registry import read_config

    monkeypatch.setattr(servers, "DEFAULT_CONFIG", tmp_path / "absent.yml")
    monkeypatch.setattr("claw.mcp.registry.DEFAULT_CONFIG", tmp_path / "absent.yml")
    config = read_config(None)
    assert config.metrics_port is None and config.servers == {}
    settings = server_settings("files", config, {"root": str(tmp_path)})
    assert settings.port is None
    assert servers.configured_endpoint(None, "files") is None
