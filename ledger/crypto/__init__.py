"""Log format v1, keys, Merkle tree, signed notes. Imports only the standard library and cryptography."""
