//! Test-only helpers for baton.
