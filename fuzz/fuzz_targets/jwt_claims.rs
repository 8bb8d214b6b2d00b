//! A JWT, and a JWT payload, read for its claims.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cxone_auth::__fuzz::jwt_claims(data));
