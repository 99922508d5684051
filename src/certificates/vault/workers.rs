//! Plain worker threads for typesetting: one per core, each with a deep stack.

/// Stack of each worker thread, and of rayon's threads (`cmd::init_threads`). Typst's
/// layout recurses deeply; the 2 MiB default of spawned threads overflowed on real
/// certificates.
pub const WORKER_STACK: usize = 16 * 1024 * 1024;

/// Runs `job` on every item with one plain thread per core (as many as rayon's pool has,
/// so RAYON_NUM_THREADS applies), results in item order.
///
/// Not rayon jobs: typst itself runs rayon work, and a rayon worker waiting for it steals
/// further certificates onto the same stack, nesting without bound (a 10,000-certificate
/// build overflowed the stack). Plain threads only wait; typst's own jobs still use the pool.
pub(crate) fn run_on_workers<T, R, F>(items: &[T], job: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().clamp(1, items.len().max(1));
    let mut indexed: Vec<(usize, R)> = std::thread::scope(|scope| {
        let work = || {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                done.push((i, job(item)));
            }
            done
        };
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                std::thread::Builder::new()
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(scope, work)
            })
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.map(|h| h.join()) {
                Ok(Ok(done)) => all.extend(done),
                // A worker that panicked: re-raise it here, as rayon would.
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                // No thread could be started: do its share on this one.
                Err(_) => all.extend(work()),
            }
        }
        all
    });
    indexed.sort_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = run_on_workers(&items, |i| i * 2);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(run_on_workers(&[] as &[u32], |i| *i).is_empty());
    }
}
