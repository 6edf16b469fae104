"""village-ledger: tamper-evident, event-sourced books for Chinese village collectives."""

__version__ = "0.1.0"
