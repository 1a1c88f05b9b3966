"""PicoCluster Claw appliance services: LEDs, MCP servers, ThreadWeaver, exporters, CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("picocluster-claw")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
