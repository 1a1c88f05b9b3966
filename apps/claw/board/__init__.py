"""What the appliance knows about its boards, shared by the services that read them (MCP, exporters, LEDs)."""
