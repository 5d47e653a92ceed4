//! Embedded adapters on SQLite.
