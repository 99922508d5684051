//! What the open pages of the live preview are told: after each rebuild (started by the
//! file watch, [`super::watch`]), they reload themselves; after a failed one they
//! show the problems, the same `path:line:column` lines as `hosho check`, over the last good
//! site. None of it exists without a build first: production pages, their CSP and routes
//! are unchanged.
//!
//! The pages learn of a rebuild from an event stream (`GET /__hosho/events`,
//! `text/event-stream`) read by a small script (`/__hosho/live.js`) that the preview adds to
//! every HTML page it serves; the problems are written into the page by the server, so they
//! show even without the script.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use hyper::body::{Bytes, Frame};
use tokio::sync::{mpsc, Notify};

/// Where the live preview's own files and events are served; reserved in building mode.
pub(crate) const PREFIX: &str = "/__hosho/";

/// The script the preview adds to every page: reloads on every event after the first.
pub(crate) const LIVE_JS: &str = r#"// hosho serve: reloads this page after each rebuild (live preview only).
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var events = new EventSource("/__hosho/events");
  events.addEventListener("rebuilt", function () { location.reload(); });
})();
"#;

/// The style of the problems banner.
pub(crate) const LIVE_CSS: &str = r#"/* hosho serve: the problems of the last rebuild (live preview only). */
.hosho-problems { position: sticky; top: 0; z-index: 1000; margin: 0; padding: 0.75rem 1rem;
  background: #fff4f4; color: #000; border-bottom: 4px solid #b00020; font-size: 0.95rem; }
.hosho-problems h2 { margin: 0 0 0.5rem; font-size: 1.05rem; color: #8a0018; }
.hosho-problems ol { margin: 0; padding-left: 1.5rem; font-family: monospace; white-space: pre-wrap; }
"#;

#[derive(Debug, Default)]
struct State {
    /// Rebuilds so far (successful or not).
    generation: u64,
    /// The problems of the last rebuild; empty when it succeeded.
    problems: Vec<String>,
}

/// Event streams open at once at most; more are answered 503.
pub(crate) const MAX_STREAMS: usize = 64;

/// Whether a request's `Host` names this machine: `localhost`, a loopback address or the
/// address the daemon listens on, with any port. The building mode answers nothing else
/// (421).
pub(crate) fn host_is_local(
    host: Option<&hyper::header::HeaderValue>,
    listen: std::net::IpAddr,
) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(ip, _)| ip),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || (ip == listen && !ip.is_unspecified()))
}

/// The live preview's state and its listeners.
#[derive(Debug, Default)]
pub(crate) struct Live {
    state: Mutex<State>,
    listeners: Mutex<Vec<mpsc::Sender<Bytes>>>,
    /// Told after a rebuild that built the vault ([`Event::ManifestChanged`]), so the daemon
    /// reads the new manifest, and its own pages from the templates, at once.
    pub(crate) manifest_changed: Notify,
}

/// What a rebuild did, as the pages and the daemon hear it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Only the public site changed (the vault, the templates and hosho.toml did not).
    SiteChanged,
    /// A full build: a new manifest, and perhaps new templates.
    ManifestChanged,
    /// The rebuild failed with these problems; nothing on disk changed.
    Problems(Vec<String>),
}

impl Live {
    /// Records a rebuild and tells every open page (and the daemon, after a full build).
    pub(crate) fn rebuilt(&self, event: Event) {
        let manifest = event == Event::ManifestChanged;
        let problems = match event {
            Event::Problems(problems) => problems,
            Event::SiteChanged | Event::ManifestChanged => Vec::new(),
        };
        let generation = {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.generation += 1;
            state.problems = problems;
            state.generation
        };
        if manifest {
            self.manifest_changed.notify_one();
        }
        let event = Bytes::from(format!("event: rebuilt\ndata: {generation}\n\n"));
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A page gone is forgotten; one that is behind keeps its place.
        listeners.retain(|l| {
            !matches!(
                l.try_send(event.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }

    /// The problems of the last rebuild.
    pub(crate) fn problems(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .problems
            .clone()
    }

    /// A new event stream for one page; `None` when [`MAX_STREAMS`] are open. Streams whose
    /// page went are forgotten first, so the list holds open streams only.
    pub(crate) fn subscribe(&self) -> Option<EventStream> {
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        listeners.retain(|l| !l.is_closed());
        if listeners.len() >= MAX_STREAMS {
            return None;
        }
        let (tx, rx) = mpsc::channel(8);
        // A comment first, so the browser sees the stream open.
        let _ = tx.try_send(Bytes::from_static(b": hosho live preview\n\n"));
        listeners.push(tx);
        Some(EventStream { rx })
    }

    /// `html` with the live script, and the problems banner when the last rebuild failed.
    pub(crate) fn decorate(&self, html: &[u8]) -> Vec<u8> {
        let problems = self.problems();
        let text = String::from_utf8_lossy(html);
        let mut head = String::from("<link rel=\"stylesheet\" href=\"/__hosho/live.css\">\n<script src=\"/__hosho/live.js\" defer></script>\n");
        if let Some(at) = text.find("</head>") {
            head.push_str(&text[at..]);
            let mut out = text[..at].to_owned();
            out.push_str(&head);
            return insert_banner(out, &problems).into_bytes();
        }
        insert_banner(format!("{head}{text}"), &problems).into_bytes()
    }
}

/// The problems banner, right after `<body…>`.
fn insert_banner(html: String, problems: &[String]) -> String {
    if problems.is_empty() {
        return html;
    }
    let mut banner = String::from(
        "<section class=\"hosho-problems\" role=\"alert\" aria-labelledby=\"hosho-problems-title\">\n\
         <h2 id=\"hosho-problems-title\">再ビルドできませんでした。直前に成功したサイトを表示しています</h2>\n<ol>\n",
    );
    for line in problems {
        banner.push_str(&format!("<li>{}</li>\n", escape(line)));
    }
    banner.push_str("</ol>\n</section>\n");
    let Some(start) = html.find("<body") else {
        return format!("{banner}{html}");
    };
    let end = html[start..]
        .find('>')
        .map_or(html.len(), |i| start + i + 1);
    format!("{}{banner}{}", &html[..end], &html[end..])
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The body of `GET /__hosho/events`: one frame per event, open until the page goes.
#[derive(Debug)]
pub(crate) struct EventStream {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|next| next.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pages_get_the_script_and_the_problems() {
        let live = Live::default();
        let page = b"<!DOCTYPE html><html lang=\"ja\"><head><title>t</title></head><body class=\"x\"><main>m</main></body></html>";
        let clean = String::from_utf8(live.decorate(page)).expect("utf-8");
        assert!(clean.contains("<script src=\"/__hosho/live.js\" defer></script>\n</head>"));
        assert!(!clean.contains("hosho-problems\""));
        live.rebuilt(Event::Problems(vec![
            "data/adopters/a.yaml:3:9: <区分>「x」は使えません".to_owned(),
        ]));
        let broken = String::from_utf8(live.decorate(page)).expect("utf-8");
        assert!(
            broken.contains("<body class=\"x\"><section class=\"hosho-problems\" role=\"alert\""),
            "{broken}"
        );
        assert!(broken.contains("<li>data/adopters/a.yaml:3:9: &lt;区分&gt;「x」は使えません</li>"));
        live.rebuilt(Event::SiteChanged);
        assert!(!String::from_utf8(live.decorate(page))
            .expect("utf-8")
            .contains("<li>"));
    }

    #[tokio::test]
    async fn every_open_page_hears_of_a_rebuild() {
        use http_body_util::BodyExt;
        let live = Live::default();
        let mut stream = live.subscribe().expect("room");
        let first = stream.frame().await.expect("frame").expect("ok");
        assert_eq!(first.into_data().expect("data"), ": hosho live preview\n\n");
        live.rebuilt(Event::SiteChanged);
        let event = stream.frame().await.expect("frame").expect("ok");
        assert_eq!(
            event.into_data().expect("data"),
            "event: rebuilt\ndata: 1\n\n"
        );
        drop(stream);
        live.rebuilt(Event::SiteChanged);
        assert!(
            live.listeners.lock().expect("lock").is_empty(),
            "closed streams are dropped"
        );
        // Streams opened and closed leave nothing behind; open ones are capped.
        for _ in 0..10_000 {
            drop(live.subscribe());
        }
        assert!(live.listeners.lock().expect("lock").len() <= 1);
        let held: Vec<EventStream> = (0..MAX_STREAMS).filter_map(|_| live.subscribe()).collect();
        assert_eq!(held.len(), MAX_STREAMS);
        assert!(live.subscribe().is_none(), "one more is refused");
        drop(held);
        assert!(live.subscribe().is_some());
    }

    #[test]
    fn only_local_hosts_are_answered() {
        let listen: std::net::IpAddr = "192.0.2.10".parse().expect("ip");
        let host = |h: &str| {
            host_is_local(
                Some(&hyper::header::HeaderValue::from_str(h).expect("value")),
                listen,
            )
        };
        assert!(host("192.0.2.10:8080"), "the listen address");
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert!(host(ok), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "[2001:db8::1]:80",
            "10.0.0.1:8080",
            "",
        ] {
            assert!(!host(refused), "{refused}");
        }
        assert!(!host_is_local(None, listen));
        let any: std::net::IpAddr = "0.0.0.0".parse().expect("ip");
        assert!(!host_is_local(
            Some(&hyper::header::HeaderValue::from_static("0.0.0.0:8080")),
            any
        ));
    }

    #[tokio::test]
    async fn the_daemon_hears_only_of_full_builds() {
        let live = Live::default();
        live.rebuilt(Event::SiteChanged);
        live.rebuilt(Event::Problems(vec!["x".to_owned()]));
        let waited =
            tokio::time::timeout(Duration::from_millis(50), live.manifest_changed.notified()).await;
        assert!(
            waited.is_err(),
            "a site-only rebuild or a failure is no new manifest"
        );
        live.rebuilt(Event::ManifestChanged);
        tokio::time::timeout(Duration::from_secs(5), live.manifest_changed.notified())
            .await
            .expect("told of the new manifest");
    }
}
