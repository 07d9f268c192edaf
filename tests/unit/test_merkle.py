"""RFC 6962 hashing, proofs and their checks, against a literal reading of the RFC."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provtrace.merkle import (
    EMPTY_ROOT,
    MerkleLog,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def mth(entries: list[bytes]) -> bytes:
    """RFC 6962 2.1: MTH, written as the RFC states it."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(entries[:k]) + mth(entries[k:])).digest()


def path(m: int, entries: list[bytes]) -> list[bytes]:
    """RFC 6962 2.1.1: PATH(m, D[n])."""
    n = len(entries)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def subproof(m: int, entries: list[bytes], complete: bool) -> list[bytes]:
    """RFC 6962 2.1.2: SUBPROOF(m, D[n], b)."""
    n = len(entries)
    if m == n:
        return [] if complete else [mth(entries)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, entries[:k], complete), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


ENTRIES = [hashlib.sha256(str(i).encode()).digest() for i in range(70)]


def test_hashing_is_rfc_6962() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


def test_the_emitters_log_and_the_full_tree_give_the_rfc_roots() -> None:
    log = MerkleLog()
    tree = MerkleTree(ENTRIES)
    assert log.root() == EMPTY_ROOT == tree.root(0)
    for size in range(1, len(ENTRIES) + 1):
        log.append(ENTRIES[size - 1])
        assert log.size == size
        assert log.root() == mth(ENTRIES[:size]) == tree.root(size), size


def test_every_inclusion_proof_is_the_rfc_path_and_verifies() -> None:
    tree = MerkleTree(ENTRIES)
    for size in range(1, 40):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == path(index, ENTRIES[:size])
            assert verify_inclusion(leaf_hash(ENTRIES[index]), index, size, proof, root)


def test_every_consistency_proof_is_the_rfc_proof_and_verifies() -> None:
    tree = MerkleTree(ENTRIES)
    for new in range(1, 40):
        for old in range(1, new + 1):
            proof = tree.consistency_proof(old, new)
            assert proof == subproof(old, ENTRIES[:new], True)
            assert verify_consistency(old, new, tree.root(old), tree.root(new), proof), (old, new)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_changed_proof_leaf_index_or_root_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 60))
    index = data.draw(st.integers(0, size - 1))
    tree = MerkleTree(ENTRIES[:size])
    proof = tree.inclusion_proof(index, size)
    leaf, root = leaf_hash(ENTRIES[index]), tree.root(size)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    assert not verify_inclusion(leaf, other, size, proof, root)
    assert not verify_inclusion(leaf_hash(ENTRIES[other]), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, tree.root(size - 1))
    assert not verify_inclusion(leaf, index, size, proof[:-1], root) or not proof
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        broken = [*proof]
        broken[position] = hashlib.sha256(broken[position]).digest()
        assert not verify_inclusion(leaf, index, size, broken, root)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_rewritten_or_forked_history_is_not_consistent(data: st.DataObject) -> None:
    new = data.draw(st.integers(2, 60))
    old = data.draw(st.integers(1, new - 1))
    changed = data.draw(st.integers(0, new - 1))
    entries = list(ENTRIES[:new])
    tree = MerkleTree(entries)
    entries[changed] = b"rewritten"
    rewritten = MerkleTree(entries)
    proof = rewritten.consistency_proof(old, new)
    # The rewritten log proves itself consistent, but not against what was seen before.
    assert verify_consistency(old, new, rewritten.root(old), rewritten.root(new), proof)
    if changed < old:
        assert not verify_consistency(old, new, tree.root(old), rewritten.root(new), proof)
    assert not verify_consistency(old, old, tree.root(old), rewritten.root(old), []) or changed >= old


def test_impossible_requests_are_refused() -> None:
    tree = MerkleTree(ENTRIES[:5])
    with pytest.raises(ValueError, match="not in a tree"):
        tree.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="no consistency proof"):
        tree.consistency_proof(4, 6)
    assert not verify_inclusion(leaf_hash(ENTRIES[0]), 0, 0, [], EMPTY_ROOT)
    assert not verify_consistency(3, 2, EMPTY_ROOT, EMPTY_ROOT, [b""])
    assert verify_consistency(0, 5, EMPTY_ROOT, tree.root(), [])
