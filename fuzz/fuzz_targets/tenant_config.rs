//! A /.well-known/cxone-configuration document.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cxone_auth::__fuzz::tenant_config(data));
