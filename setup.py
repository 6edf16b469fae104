"""The optional C part of the read-model rebuild (ledger/projections/_rows.c).

Everything else is in pyproject.toml. The extension needs a C compiler, Python's headers and SQLite's (Debian:
libsqlite3-dev); where one is missing the install goes on without it and the rebuild runs its Python equivalent,
with the same rows, at about half the speed.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("ledger.projections._rows", ["ledger/projections/_rows.c"], libraries=["sqlite3"], optional=True)
    ]
)
