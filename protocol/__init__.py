"""What the broker and the peer share: encodings, ids, signatures, crypto and invite formats.

This package imports no Django so that `peer/` installs on a laptop without the server.
"""
