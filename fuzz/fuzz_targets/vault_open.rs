#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| helpline_fuzz::vault_open(data));
