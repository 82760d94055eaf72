//! The fuzz targets of `../tests/fuzz.rs`, included here so that `cargo bolero test` can run
//! them coverage-guided (libFuzzer); see that file for the commands and what each checks.
//!
//! ```sh
//! cd fuzz && cargo bolero test --toolchain nightly --sanitizer NONE -T 10min fuzz::codec
//! ```

#[cfg(test)]
#[path = "../../tests/fuzz.rs"]
mod fuzz;
