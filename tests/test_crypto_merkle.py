"""RFC 9162 Merkle tree against ../shared/vectors, plus property tests."""

from __future__ import annotations

import base64
import functools
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors_support import load_vectors, needs_vectors, vector_params

from ledger.crypto.merkle import (
    EMPTY_ROOT,
    ProofError,
    StreamingRoot,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    list_subtree_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def b64_list(items: list[str] | None) -> list[bytes]:
    return [b64(item) for item in items or []]


def reference_leaf_hashes() -> list[bytes]:
    return [leaf_hash(bytes.fromhex(h)) for h in load_vectors("merkle_reference_tree.json")["leaf_inputs_hex"]]


# --- hashing ---


@pytest.mark.parametrize("case", vector_params("rfc6962_hasher.json", "cases"))
def test_rfc6962_hasher(case):
    if case["kind"] == "empty_root":
        assert EMPTY_ROOT.hex() == case["want_hex"]
        assert root([]).hex() == case["want_hex"]
    elif case["kind"] == "leaf":
        assert leaf_hash(bytes.fromhex(case["data_hex"])).hex() == case["want_hex"]
    else:
        assert node_hash(bytes.fromhex(case["left_hex"]), bytes.fromhex(case["right_hex"])).hex() == case["want_hex"]


@needs_vectors
@pytest.mark.parametrize("size", range(9))
def test_reference_tree_roots(size):
    want = load_vectors("merkle_reference_tree.json")["root_hex_by_size"][size]
    leaves = reference_leaf_hashes()
    assert root(leaves[:size]).hex() == want
    if size:
        assert list_subtree_hash(leaves)(0, size).hex() == want


@needs_vectors
def test_streaming_root_matches_every_reference_size():
    data = load_vectors("merkle_reference_tree.json")
    stream = StreamingRoot()
    seen = [stream.root().hex()]
    for leaf in reference_leaf_hashes():
        stream.append(leaf)
        seen.append(stream.root().hex())
    assert seen == data["root_hex_by_size"]
    assert stream.size == 8


@needs_vectors
def test_reference_tree_node_hashes():
    data = load_vectors("merkle_reference_tree.json")
    subtree_hash = list_subtree_hash(reference_leaf_hashes())
    for level, row in enumerate(data["node_hashes_hex_by_level"]):
        width = 1 << level
        assert [subtree_hash(i * width, (i + 1) * width).hex() for i in range(len(row))] == row


def test_streaming_root_refuses_a_non_hash():
    with pytest.raises(ValueError, match="leaf hash must be 32 bytes, got 3"):
        StreamingRoot().append(b"abc")


# --- upstream verification probes (transparency-dev/merkle testdata) ---


@pytest.mark.parametrize("probe", vector_params("merkle_inclusion_probes.json", "probes", "file"))
def test_inclusion_probe(probe):
    args = (probe["leafIdx"], probe["treeSize"], b64(probe["leafHash"]), b64_list(probe["proof"]), b64(probe["root"]))
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)
        generated = inclusion_proof(probe["leafIdx"], probe["treeSize"], list_subtree_hash(reference_leaf_hashes()))
        assert list(generated) == b64_list(probe["proof"])


# Where our documented policy (merkle.py docstring, TLOG.md §1.6/§1.7) and the upstream probe disagree.
CONSISTENCY_DEVIATIONS = {
    # Upstream accepts two 12-byte "roots" for equal sizes; we check every hash is 32 bytes first.
    "testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": "old root must be 32 bytes, got 12",
}


@pytest.mark.parametrize("probe", vector_params("merkle_consistency_probes.json", "probes", "file"))
def test_consistency_probe(probe):
    args = (probe["size1"], probe["size2"], b64(probe["root1"]), b64(probe["root2"]), b64_list(probe["proof"]))
    deviation = CONSISTENCY_DEVIATIONS.get(probe["file"])
    if deviation is not None:
        assert probe["wantErr"] is False
        with pytest.raises(ProofError, match=deviation):
            verify_consistency(*args)
    elif probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
        if probe["size1"] != probe["size2"]:
            generated = consistency_proof(probe["size1"], probe["size2"], list_subtree_hash(reference_leaf_hashes()))
            assert list(generated) == b64_list(probe["proof"])


@needs_vectors
def test_consistency_deviations_are_exactly_the_listed_probes():
    probes = load_vectors("merkle_consistency_probes.json")["probes"]
    disagreeing = set()
    for probe in probes:
        try:
            verify_consistency(
                probe["size1"], probe["size2"], b64(probe["root1"]), b64(probe["root2"]), b64_list(probe["proof"])
            )
        except ProofError:
            rejected = True
        else:
            rejected = False
        if rejected != probe["wantErr"]:
            disagreeing.add(probe["file"])
    assert disagreeing == set(CONSISTENCY_DEVIATIONS)
    assert len(probes) == 98


@needs_vectors
def test_size_zero_probe_is_rejected_for_its_short_root_not_for_size_zero():
    # transparency-dev rejects every proof from size 0; our policy (TLOG.md §1.6) accepts an empty proof from
    # an H("") root. The only probe that could tell the policies apart carries a 12-byte new root.
    probe = next(
        p
        for p in load_vectors("merkle_consistency_probes.json")["probes"]
        if p["file"].endswith("size1-is-zero-and-size2-is-not-zero.json")
    )
    assert b64(probe["root1"]) == EMPTY_ROOT and probe["proof"] == []
    with pytest.raises(ProofError, match="new root must be 32 bytes, got 12"):
        verify_consistency(0, 1, EMPTY_ROOT, b64(probe["root2"]), [])


# --- accumulated vectors: every proof for trees up to 130 leaves ---


def _bit_ceil(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _valid_subtree(start: int, end: int) -> bool:
    return start <= end and (start == 0 or start == end or start % _bit_ceil(end - start) == 0)


@functools.cache
def _accumulated_tree():
    data = load_vectors("merkle_accumulated_vectors.json")
    leaves = [leaf_hash(bytes([i])) for i in range(data["max_size"])]
    return data, functools.cache(list_subtree_hash(leaves))


def _want(name: str) -> str:
    data, _ = _accumulated_tree()
    return next(v["want_sha256_hex"] for v in data["vectors"] if v["name"] == name)


def _proof_text(proof) -> str:
    return "".join(" " + h.hex() for h in proof)


def _mtc_subtree_consistency(start: int, end: int, n: int, subtree_hash) -> tuple[bytes, ...]:
    """draft-ietf-plants-merkle-tree-certs SUBTREE_PROOF, needed only for this vector's start > 0 lines.

    Descend from the root until [start, end) begins a node; that node's part is RFC 9162 PROOF (the library),
    the nodes passed on the way are appended bottom-up. For start == 0 this is exactly PROOF(end, D[0:n]).
    """
    if start == end:
        return ()
    low, high, siblings = 0, n, []
    while start != low:
        k = _bit_ceil(high - low) // 2
        if end <= low + k:
            siblings.append(subtree_hash(low + k, high))
            high = low + k
        else:
            siblings.append(subtree_hash(low, low + k))
            low += k
    inner = consistency_proof(end - low, high - low, lambda a, b: subtree_hash(low + a, low + b))
    return inner + tuple(reversed(siblings))


@needs_vectors
def test_accumulated_subtree_hashes():
    data, subtree_hash = _accumulated_tree()
    digest = hashlib.sha256()
    for end in range(data["max_size"] + 1):
        for start in range(end + 1):
            if _valid_subtree(start, end):
                value = EMPTY_ROOT if start == end else subtree_hash(start, end)
                digest.update(f"[{start}, {end}) {value.hex()}\n".encode())
    assert digest.hexdigest() == _want("subtree_hash")


@needs_vectors
def test_accumulated_inclusion_proofs():
    data, subtree_hash = _accumulated_tree()
    digest = hashlib.sha256()
    for end in range(data["max_size"] + 1):
        for start in range(end + 1):
            if not _valid_subtree(start, end):
                continue
            for index in range(start, end):
                proof = inclusion_proof(index - start, end - start, lambda a, b: subtree_hash(start + a, start + b))
                digest.update(f"{index} [{start}, {end}){_proof_text(proof)}\n".encode())
                if start == 0:
                    verify_inclusion(index, end, subtree_hash(index, index + 1), proof, subtree_hash(0, end))
    assert digest.hexdigest() == _want("subtree_inclusion_proof")


@needs_vectors
def test_accumulated_consistency_proofs():
    data, subtree_hash = _accumulated_tree()
    digest = hashlib.sha256()
    for n in range(data["max_size"] + 1):
        for end in range(n + 1):
            for start in range(end + 1):
                if not _valid_subtree(start, end):
                    continue
                if start == 0:
                    proof = consistency_proof(end, n, subtree_hash)
                    old_root = EMPTY_ROOT if end == 0 else subtree_hash(0, end)
                    new_root = EMPTY_ROOT if n == 0 else subtree_hash(0, n)
                    verify_consistency(end, n, old_root, new_root, proof)
                else:
                    proof = _mtc_subtree_consistency(start, end, n, subtree_hash)
                digest.update(f"[{start}, {end}) {n}{_proof_text(proof)}\n".encode())
    assert digest.hexdigest() == _want("subtree_consistency_proof")


@needs_vectors
def test_accumulated_subtree_covering():
    # MTC "Selecting Two Subtrees" (draft-07: always two, the second possibly empty). Not used by an RFC 9162
    # log; reproduced here so that every vector in the file is checked.
    def covering(start: int, end: int) -> tuple[tuple[int, int], tuple[int, int]]:
        if end - start <= 1:
            return (start, end), (end, end)
        last = end - 1
        split = (start ^ last).bit_length() - 1
        mask = (1 << split) - 1
        mid = last & ~mask
        left_start = start & ~((1 << (~start & mask).bit_length()) - 1)
        return (left_start, mid), (mid, end)

    data, _ = _accumulated_tree()
    digest = hashlib.sha256()
    for end in range(data["max_size"] + 1):
        for start in range(end + 1):
            (a, b), (c, d) = covering(start, end)
            digest.update(f"[{a}, {b}) [{c}, {d})\n".encode())
    assert digest.hexdigest() == _want("subtree_covering")


# --- RFC 9162 §2.1.5 worked example ---


@needs_vectors
def test_rfc9162_example_structure():
    data = load_vectors("rfc9162_example_structure.json")
    subtree_hash = list_subtree_hash(reference_leaf_hashes()[:7])
    node = {name: subtree_hash(*span) for name, span in data["node_ranges"].items()}
    for case in data["inclusion"]:
        proof = inclusion_proof(case["leaf"], case["size"], subtree_hash)
        assert list(proof) == [node[name] for name in case["path"]]
        verify_inclusion(case["leaf"], case["size"], subtree_hash(case["leaf"], case["leaf"] + 1), proof, node["hash"])
    for case in data["consistency"]:
        proof = consistency_proof(case["first"], case["second"], subtree_hash)
        assert list(proof) == [node[name] for name in case["proof"]]
        verify_consistency(case["first"], case["second"], subtree_hash(0, case["first"]), node["hash"], proof)


# --- real Certificate Transparency log (argon2020): 64-bit sizes, 30-hash proofs ---


@needs_vectors
def test_ct_argon2020_inclusion():
    inclusion = load_vectors("ct_argon2020_real.json")["inclusion"]
    leaf = leaf_hash(b64(inclusion["leaf_input_b64"]))
    path = b64_list(inclusion["audit_path_b64"])
    assert len(path) == 30 and inclusion["tree_size"] == 961984011
    verify_inclusion(inclusion["leaf_index"], inclusion["tree_size"], leaf, path, b64(inclusion["root_b64"]))
    with pytest.raises(ProofError, match="does not lead to the root"):
        verify_inclusion(inclusion["leaf_index"] + 1, inclusion["tree_size"], leaf, path, b64(inclusion["root_b64"]))
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(inclusion["leaf_index"], inclusion["tree_size"], leaf, path[:-1], b64(inclusion["root_b64"]))


@needs_vectors
def test_ct_argon2020_consistency():
    data = load_vectors("ct_argon2020_real.json")
    consistency = data["consistency"]
    proof = b64_list(consistency["proof_b64"])
    old_root, new_root = b64(consistency["first_root_b64"]), b64(consistency["second_root_b64"])
    assert new_root == b64(data["sth"]["root_b64"])
    verify_consistency(consistency["first"], consistency["second"], old_root, new_root, proof)
    flipped = bytearray(proof[17])
    flipped[0] ^= 1
    with pytest.raises(ProofError, match="does not reproduce the (old|new) root"):
        verify_consistency(
            consistency["first"], consistency["second"], old_root, new_root, [*proof[:17], bytes(flipped), *proof[18:]]
        )


# --- our edge-case policy (merkle.py docstring) ---


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_policy_size_zero_needs_empty_proof_and_empty_root():
    new_root = root(_leaves(5))
    verify_consistency(0, 5, EMPTY_ROOT, new_root, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert consistency_proof(0, 5, list_subtree_hash(_leaves(5))) == ()
    with pytest.raises(ProofError, match="from size 0 must be empty"):
        verify_consistency(0, 5, EMPTY_ROOT, new_root, [new_root])
    with pytest.raises(ProofError, match="root of size 0 must be SHA-256 of the empty string"):
        verify_consistency(0, 5, new_root, new_root, [])


def test_policy_equal_sizes():
    tree_root = root(_leaves(4))
    verify_consistency(4, 4, tree_root, tree_root, [])
    with pytest.raises(ProofError, match="two different roots for the same size 4"):
        verify_consistency(4, 4, tree_root, root(_leaves(3)), [])
    with pytest.raises(ProofError, match="between equal sizes 4 must be empty"):
        verify_consistency(4, 4, tree_root, tree_root, [tree_root])


def test_policy_shrinking_is_truncation():
    with pytest.raises(ProofError, match="new size 3 is smaller than old size 4: truncation or rollback"):
        verify_consistency(4, 3, root(_leaves(4)), root(_leaves(3)), [])
    with pytest.raises(ProofError, match="no consistency proof from size 4 to size 3"):
        consistency_proof(4, 3, list_subtree_hash(_leaves(4)))


def test_empty_leaf_hash_against_empty_root_is_rejected():
    # The literal RFC loop accepts this for size 1 (TLOG.md §1.7).
    with pytest.raises(ProofError, match="leaf hash must be 32 bytes, got 0"):
        verify_inclusion(0, 1, b"", [], b"")


def test_inclusion_proof_index_out_of_range():
    with pytest.raises(ProofError, match="leaf index 5 is not in a tree of size 5"):
        inclusion_proof(5, 5, list_subtree_hash(_leaves(5)))


# --- properties ---

sizes = st.integers(min_value=1, max_value=300)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=sizes)
def test_every_generated_inclusion_proof_verifies_and_a_flipped_bit_fails(data, size):
    leaves = _leaves(size)
    subtree_hash = functools.cache(list_subtree_hash(leaves))
    tree_root = root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = inclusion_proof(index, size, subtree_hash)
    verify_inclusion(index, size, leaves[index], proof, tree_root)
    target = data.draw(st.integers(min_value=-1, max_value=len(proof) - 1), label="corrupted element (-1: leaf)")
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    corrupted_leaf, corrupted_proof = leaves[index], list(proof)
    if target < 0:
        corrupted_leaf = _flip(corrupted_leaf, bit)
    else:
        corrupted_proof[target] = _flip(corrupted_proof[target], bit)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, corrupted_leaf, corrupted_proof, tree_root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaves[index], proof, _flip(tree_root, bit))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), new_size=st.integers(min_value=2, max_value=300))
def test_every_generated_consistency_proof_verifies_and_a_flipped_bit_fails(data, new_size):
    leaves = _leaves(new_size)
    subtree_hash = functools.cache(list_subtree_hash(leaves))
    old_size = data.draw(st.integers(min_value=1, max_value=new_size - 1), label="old_size")
    old_root, new_root = root(leaves[:old_size]), root(leaves)
    proof = consistency_proof(old_size, new_size, subtree_hash)
    assert len(proof) <= (new_size - 1).bit_length() + 1
    verify_consistency(old_size, new_size, old_root, new_root, proof)
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    target = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="corrupted element")
    corrupted = list(proof)
    corrupted[target] = _flip(corrupted[target], bit)
    with pytest.raises(ProofError):
        verify_consistency(old_size, new_size, old_root, new_root, corrupted)
    with pytest.raises(ProofError):
        verify_consistency(old_size, new_size, _flip(old_root, bit), new_root, proof)
    with pytest.raises(ProofError):
        verify_consistency(old_size, new_size, old_root, _flip(new_root, bit), proof)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=0, max_value=600))
def test_streaming_root_equals_recursive_definition(size):
    leaves = _leaves(size)

    def mth(items):
        if not items:
            return EMPTY_ROOT
        if len(items) == 1:
            return items[0]
        k = _bit_ceil(len(items)) // 2
        return node_hash(mth(items[:k]), mth(items[k:]))

    assert root(leaves) == mth(leaves)


def _flip(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)
