//! The create body (NewTask::parse) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pj_core::fuzz::create_body(data));
