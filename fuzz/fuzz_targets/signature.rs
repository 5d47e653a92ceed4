//! Callback signature verification (SignatureHeaders + verify) over arbitrary headers, body, key and clock.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pj_core::fuzz::signature(data));
