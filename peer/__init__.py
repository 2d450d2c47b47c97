"""claudemesh peer: the `claudemesh` command, its MCP server, and the Python SDK (`from peer import Mesh`, and
`peer.rest.RestClient` for the REST API). Imports `protocol/`, never Django or the server apps."""

__version__ = "0.1.0"
__all__ = ["Mesh", "RestClient", "__version__"]


def __getattr__(name: str):
    # Imported on first use: the CLI's start-up does not pay for the SDK.
    if name == "Mesh":
        from peer.sdk import Mesh

        return Mesh
    if name == "RestClient":
        from peer.rest import RestClient

        return RestClient
    raise AttributeError(name)
