//! Shared helpers for MediBlock's end-to-end tests (started anvil nodes, relays, databases).
