//! A host asked about, with an optional pattern allowed first.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cxone_auth::__fuzz::allowed_hosts(data));
