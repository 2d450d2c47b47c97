"""Ids: 32 characters of [0-9A-Za-z] from the CSPRNG, every character reachable, no repeats."""

from collections import Counter

from protocol.ids import ID_ALPHABET, ID_LENGTH, ID_PATTERN, is_id_fragment, new_code, new_id


def test_ids_have_the_wire_shape_and_do_not_repeat():
    ids = [new_id() for _ in range(5000)]

    assert len(set(ids)) == len(ids)
    assert all(len(i) == ID_LENGTH and ID_PATTERN.fullmatch(i) for i in ids)


def test_every_alphabet_character_appears_in_every_position_class():
    ids = [new_id() for _ in range(4000)]
    counts = Counter("".join(ids))

    assert set(counts) == set(ID_ALPHABET)
    # Uniform draws put about 2,065 of each character in 128,000; a broken encoder skews far past this.
    assert min(counts.values()) > 1500 and max(counts.values()) < 2700
    # The last position is not stuck on a few digits (a too-small random number would leave it at "0").
    assert len({i[-1] for i in ids}) == len(ID_ALPHABET)


def test_fragments_accept_only_id_characters():
    assert is_id_fragment("abcDEF123")
    assert not is_id_fragment("abc%")
    assert not is_id_fragment("a_b")
    assert not is_id_fragment("")
    assert not is_id_fragment("x" * 33)
    assert len(new_code()) == 8


def test_bytes_that_would_bias_the_alphabet_are_skipped(monkeypatch):
    """Given a CSPRNG draw that starts with bytes 248–255 (which `% 62` would map unevenly), then they are dropped
    and the id is made from the following bytes; a draw with too few usable bytes is replaced by another."""
    draws = iter([bytes(range(248, 256)) * 6, bytes(range(248, 256)) * 2 + bytes(range(32)) + bytes(16)])
    monkeypatch.setattr("protocol.ids.secrets.token_bytes", lambda n: next(draws))

    assert new_id() == ID_ALPHABET[:32]
