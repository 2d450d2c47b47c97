"""Sealed coordination records and blind tokens (protocol/records.py): a record opens only for its kind and name,
signed by its author; tokens are per key, and normalised words match."""

from __future__ import annotations

import pytest

from protocol.crypto import SigningKeypair
from protocol.keyring import new_scope_key
from protocol.records import (
    RecordError,
    RecordKind,
    blind_tokens,
    open_record,
    parse_sealed,
    seal_record,
    search_key,
    words,
)

MESH = "m" * 32


def test_a_record_opens_for_its_own_kind_and_name_only():
    key, author = new_scope_key(), SigningKeypair.generate()
    sealed = seal_record({"day": "friday"}, kind=RecordKind.STATE, name="release", mesh_id=MESH, epoch=3, key=key,
                         author=author).as_wire()
    envelope, nonce = parse_sealed(sealed)
    assert envelope.author == author.public_hex and envelope.epoch == 3 and envelope.scope == "mesh"
    assert open_record(envelope, nonce, kind=RecordKind.STATE, name="release", mesh_id=MESH, key=key) == {"day": "friday"}
    with pytest.raises(RecordError, match="written as another"):  # moved to another key by the server
        open_record(envelope, nonce, kind=RecordKind.STATE, name="owner", mesh_id=MESH, key=key)
    with pytest.raises(RecordError, match="written as another"):
        open_record(envelope, nonce, kind=RecordKind.TASK_RESULT, name="release", mesh_id=MESH, key=key)
    with pytest.raises(RecordError):  # another mesh's context: the signature no longer verifies
        open_record(envelope, nonce, kind=RecordKind.STATE, name="release", mesh_id="x" * 32, key=key)
    with pytest.raises(RecordError):
        open_record(envelope, nonce, kind=RecordKind.STATE, name="release", mesh_id=MESH, key=new_scope_key())


@pytest.mark.parametrize("bad", [None, "text", {"nonce": "x"}, {"nonce": "AAAA", "ciphertext": "AAAA"},
                                 {"nonce": "A" * 32, "ciphertext": "Q01TMQ=="}])
def test_malformed_sealed_values_are_refused_by_shape(bad):
    with pytest.raises(RecordError):
        parse_sealed(bad)


def test_words_are_normalised_and_tokens_depend_on_the_key():
    # NFKC, case-folded, stop words and one-letter words out, a final plural `s` folded (where it is not one too,
    # as in postgres: memories and queries fold alike) but not `ss`
    assert words("The Deploys of ＰＯＳＴＧＲＥＳ, a class; I") == ["deploy", "postgre", "class"]
    key = search_key(new_scope_key())
    assert blind_tokens("deploy postgres", key) == blind_tokens("Deploys POSTGRES!", key)
    assert len(blind_tokens("one two two three", key)) == 3
    other = search_key(new_scope_key())
    assert set(blind_tokens("deploy", key)).isdisjoint(blind_tokens("deploy", other))
    assert all(len(token) == 32 for token in blind_tokens("deploy postgres", key))
