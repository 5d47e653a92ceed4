//! The HTTP API as one axum router.
