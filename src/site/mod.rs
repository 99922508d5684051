//! The public site: [`Site::load`] reads and validates `hosho.toml`, `content/`,
//! `data/adopters/`, `data/qa.yaml` and `templates/` into the model ([`model`]);
//! [`Site::render`] turns the model into the files of `site-out/` through a [`Sink`] and
//! checks their links.
//!
//! The site never receives a certificate, a key or the vault: the build hands it only what
//! the public may see of the signed manifest ([`Trust`]).

pub mod adopters;
pub mod cache;
mod check;
pub mod content;
mod feed;
pub mod fees;
pub mod links;
mod load;
pub mod markdown;
mod model;
pub mod opendata;
pub mod output;
pub mod pages;
pub mod qa;
pub mod render;
pub mod template_uses;
pub mod timeline;

pub use model::{Site, Trust};
pub use output::{MemorySink, Output, RenderError, Rendered, Sink};
