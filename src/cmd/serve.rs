//! `hosho serve`: build first (unless `--no-build`), then run the verification daemon.

use std::process::ExitCode;

use anyhow::Result;

use super::console;
use crate::cli::ServeArgs;
use crate::daemon;
use crate::rebuild::Rebuilder;
use crate::watch;

/// Opens `url` in the desktop's browser (`xdg-open` and the like), without waiting for it.
fn open_browser(url: &str) {
    if let Err(e) = open::that_detached(url) {
        tracing::warn!(error = %e, "ブラウザを開けませんでした。{url} を開いてください");
    }
}

pub(super) fn run(args: ServeArgs) -> Result<ExitCode> {
    let open = args.open;
    let options = daemon::Options::from(args);
    let paths = options.paths();
    let mut rebuilder = options.build.then(|| Rebuilder::new(paths.clone()));
    let example = match rebuilder.as_mut() {
        Some(rebuilder) => {
            let summary = rebuilder.build()?;
            console::built(&paths, summary);
            summary.example.clone()
        }
        None => None,
    };
    let preview = options.build;
    daemon::run(options, |ready| {
        // Watching before saying so: an edit right after the banner is rebuilt.
        let live = ready.live.as_ref().zip(rebuilder.take());
        let watching = live.is_some_and(|(live, rebuilder)| {
            let started = watch::start(rebuilder, std::sync::Arc::clone(live), move |r| {
                match r {
                    watch::Rebuilt::Built(summary) => console::built(&paths, summary),
                    watch::Rebuilt::Failed(e) => {
                        console::report(e);
                        console::keeps_serving();
                    }
                }
            });
            started
                .inspect_err(|e| tracing::warn!(error = %e, "ファイルの変更を監視できないため、自動の再ビルドはしません"))
                .is_ok()
        });
        console::serving(ready, preview, example.as_ref(), watching);
        if open {
            open_browser(&format!("http://{}/", ready.addr));
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
