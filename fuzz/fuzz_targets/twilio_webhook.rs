#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| helpline_fuzz::twilio_webhook(data));
