//! Test-only crate: the fuzz targets live in `tests/fuzz.rs` (see `README.md`). They
//! depend on every reader of untrusted input, so they sit outside those crates.
