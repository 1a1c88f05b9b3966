"""First-party MCP servers of the appliance (files, ...), built on the official `mcp` SDK (v2, `MCPServer`)."""
