//! hosho's integration tests: fixture site roots built with the real binary.

mod accessibility;
mod alerts;
mod architecture;
mod browser;
mod cdp;
mod certificates;
mod crash;
mod daemon;
mod demo;
mod deployment;
mod errors;
mod fixtures;
mod fuzz_corpus;
mod hostile;
mod incremental;
mod live;
mod logging;
mod output;
mod platform;
mod preflight;
mod receipts;
mod recipes;
mod security_doc;
mod support;
mod vault;
mod version;
