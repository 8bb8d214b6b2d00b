//! A token endpoint's answer: status, Retry-After and body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cxone_auth::__fuzz::token_response(data));
