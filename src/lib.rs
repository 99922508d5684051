//! hosho (保証): publishes a construction-guarantee company's 電子保証 service.
//!
//! Data flows one way: files → validated model ([`site::Site`]) → rendered output
//! ([`site::Output`]), swapped into place whole ([`output::Staging`]).

pub mod authkey;
pub mod build;
pub mod cert;
pub mod cli;
pub mod config;
pub mod content;
pub mod daemon;
pub mod data;
pub mod diagnostics;
pub mod era;
pub mod format;
pub mod keys;
pub mod links;
pub mod manifest;
pub mod markdown;
pub mod opendata;
pub mod output;
pub mod record;
pub mod render;
pub mod site;
pub mod timeline;
pub mod typeset;
pub mod vault;
pub mod verify;
pub mod walk;
pub mod yaml;
