"""PicoCluster Claw appliance services: LEDs, MCP servers, ThreadWeaver, exporters, CLI."""


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs more than the rest of a `claw leds signal` start.
    if name != "__version__":
        raise AttributeError(f"module 'claw' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("picocluster-claw")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0"
