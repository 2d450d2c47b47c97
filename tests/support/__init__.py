"""What the suites share: identities, signed hellos, WebSocket clients, server processes, oracles. Tests and
conftests import from here, never from one another."""
