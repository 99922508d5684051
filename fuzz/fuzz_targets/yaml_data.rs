#![no_main]
//! `hosho::fuzzing::yaml_data`: see its doc comment for the input and the property.

libfuzzer_sys::fuzz_target!(|data: &[u8]| hosho::fuzzing::yaml_data(data));
