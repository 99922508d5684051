#![no_main]
//! `hosho::fuzzing::request_bodies`: see its doc comment for the input and the property.

libfuzzer_sys::fuzz_target!(|data: &[u8]| hosho::fuzzing::request_bodies(data));
