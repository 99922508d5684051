//! hosho's integration tests: fixture site roots built with the real binary.

mod accessibility;
mod browser;
mod cdp;
mod certificates;
mod daemon;
mod demo;
mod deployment;
mod errors;
mod fixtures;
mod hostile;
mod incremental;
mod live;
mod output;
mod support;
