//! A Retry-After value: delta-seconds or an HTTP-date.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cxone_auth::__fuzz::retry_after(data));
