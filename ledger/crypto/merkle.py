"""RFC 9162 §2.1 Merkle tree: hashing, streaming root, inclusion and consistency proofs (TLOG.md §1).

Proofs are tuples of 32-byte hashes ordered bottom-up, exactly as the RFC's PATH and PROOF produce them.
Generation reads subtree hashes through a `SubtreeHash` callable, hash(start, end) = MTH(D[start:end]),
so a database of stored node hashes can back it; `list_subtree_hash` makes one from leaf hashes in memory.

Edge-case policy for consistency (TLOG.md §1.6, "recommended for the ledger"):
  old_size > new_size   always fails: it is evidence of truncation or rollback;
  old_size == new_size  verifies iff the proof is empty and the two roots are equal;
  old_size == 0         verifies iff the proof is empty and the old root is H("") (c2sp tlog-witness),
                        where transparency-dev/merkle refuses every size-0 proof.
All hashes are length-checked first: the RFC loop alone accepts an empty leaf hash against an empty root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ledger.crypto.logformat import leaf_hash

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "ProofError",
    "StreamingRoot",
    "SubtreeHash",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "list_subtree_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeHash = Callable[[int, int], bytes]
"""hash(start, end) -> MTH(D[start:end]); only called with 0 <= start < end <= tree size."""


class ProofError(ValueError):
    """A Merkle proof that does not verify, or a request for a proof that cannot exist."""


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class StreamingRoot:
    """Root of a growing tree in O(log n) memory (RFC 9162 §2.1.2, TLOG.md §1.2); readable at every size."""

    __slots__ = ("_stack", "_size")

    def __init__(self) -> None:
        # One hash per complete subtree, left to right, sizes strictly decreasing: the binary digits of size.
        self._stack: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """MTHs of the complete subtrees that make up the tree, largest first (one per 1-bit of size)."""
        return tuple(self._stack)

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[bytes]) -> StreamingRoot:
        """Resume a tree from its frontier, e.g. one an auditor saved after verifying the first `size` leaves."""
        if size < 0 or len(frontier) != size.bit_count() or any(len(h) != HASH_SIZE for h in frontier):
            raise ValueError(f"a frontier of size {size} needs {max(size, 0).bit_count()} hashes of {HASH_SIZE} bytes")
        stream = cls()
        stream._stack, stream._size = list(frontier), size
        return stream

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash (not leaf data)."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf)}")
        self._stack.append(leaf)
        index = self._size
        while index & 1:
            right = self._stack.pop()
            self._stack.append(node_hash(self._stack.pop(), right))
            index >>= 1
        self._size += 1

    def root(self) -> bytes:
        """MTH of the leaves appended so far; the stack is folded right to left without being changed."""
        if not self._stack:
            return EMPTY_ROOT
        result = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            result = node_hash(left, result)
        return result


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the given leaf hashes."""
    stream = StreamingRoot()
    for leaf in leaf_hashes:
        stream.append(leaf)
    return stream.root()


def list_subtree_hash(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A SubtreeHash over leaf hashes held in memory."""

    def subtree_hash(start: int, end: int) -> bytes:
        if not 0 <= start < end <= len(leaf_hashes):
            raise ProofError(f"subtree [{start}, {end}) is outside the {len(leaf_hashes)} leaves")
        return root(leaf_hashes[start:end])

    return subtree_hash


def inclusion_proof(index: int, size: int, subtree_hash: SubtreeHash) -> tuple[bytes, ...]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, bottom-up."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    # Walk down from the root; each level contributes the sibling subtree, so reverse for bottom-up order.
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_hash(start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(start, start + k))
            start += k
    return tuple(reversed(path))


def consistency_proof(old_size: int, new_size: int, subtree_hash: SubtreeHash) -> tuple[bytes, ...]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1, bottom-up; empty when the sizes are equal or old is 0."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return ()
    path: list[bytes] = []
    start, end, m, known = 0, new_size, old_size, True
    # SUBPROOF(m, D[start:end], known) unrolled; hashes collected top-down, reversed at the end.
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            path.append(subtree_hash(start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(start, start + k))
            start, m, known = start + k, m - k, False
    if not known:
        path.append(subtree_hash(start, end))
    return tuple(reversed(path))


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> None:
    """RFC 9162 §2.1.3.2 with length checks; raises ProofError naming what failed."""
    _check_hash(leaf, "leaf hash")
    _check_hash(root_hash, "root hash")
    for position, element in enumerate(proof):
        _check_hash(element, f"inclusion proof element {position}")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof for leaf {index} in tree size {size} is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof for leaf {index} in tree size {size} is too short ({len(proof)} hashes)")
    if r != root_hash:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root of tree size {size}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2 with length checks and the module's edge-case policy; raises ProofError."""
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for position, element in enumerate(proof):
        _check_hash(element, f"consistency proof element {position}")
    if old_size < 0 or old_size > new_size:
        raise ProofError(f"new size {new_size} is smaller than old size {old_size}: truncation or rollback")
    if old_size == new_size:
        if proof:
            raise ProofError(f"consistency proof between equal sizes {old_size} must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof from size 0 must be empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("the root of size 0 must be SHA-256 of the empty string")
        return
    if not proof:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # A power-of-two old tree is itself a node of the new tree, so the proof omits it.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from size {old_size} to {new_size} is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} is too short ({len(proof)} hashes)")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the old root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the new root of size {new_size}")
