"""The domain: charts of accounts, money, the event-sourced aggregates and their validation."""
