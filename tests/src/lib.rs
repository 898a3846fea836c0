//! End-to-end scenarios across several outdial binaries; see `tests/`.
