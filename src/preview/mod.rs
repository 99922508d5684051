//! The live preview of `hosho serve` in building mode, whole: the file events of the site
//! root ([`watch`]), the decision of what an edit rebuilds ([`rebuild`]), the update of
//! `site-out/` in place ([`update`]), and what the open pages are told: the event stream and
//! the problems banner ([`live`]).
//!
//! The daemon knows only [`live::Live`]: it serves the stream and decorates the pages it
//! previews, and it hears one typed event from it, [`live::Rebuilt::Full`], after which it
//! reads the new manifest and its own pages again. Nothing here is used by `hosho build` or
//! by the daemon in production (`--no-build`).

pub mod live;
pub mod rebuild;
pub(crate) mod update;
pub(crate) mod watch;
