"""claudemesh peer: the `claudemesh` command and MCP server. Imports `protocol/`, never Django or the server apps."""

__version__ = "0.1.0"
