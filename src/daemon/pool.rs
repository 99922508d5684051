//! The bounded pool the KDF runs on: `workers` jobs at a time and at most `queue` more
//! waiting. A request that finds it full is answered 503 at once, and the async threads
//! (and with them `/healthz`) never run a KDF.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// The pool was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

pub(crate) struct KdfPool {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    workers: usize,
    capacity: usize,
}

impl KdfPool {
    pub(crate) fn new(workers: usize, queue: usize) -> KdfPool {
        let workers = workers.max(1);
        KdfPool {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
            workers,
            capacity: workers + queue,
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs admitted and not yet finished.
    pub(crate) fn in_use(&self) -> usize {
        self.capacity
            .saturating_sub(self.admitted.available_permits())
    }

    /// Runs `job` on a blocking thread once a worker is free; `Err(Busy)` at once when
    /// `workers + queue` jobs are already admitted.
    pub(crate) async fn run<R, F>(&self, job: F) -> Result<R, Busy>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        let worker = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| Busy)?;
        let result = tokio::task::spawn_blocking(move || {
            let r = job();
            drop(worker);
            r
        })
        .await
        .map_err(|_| Busy);
        drop(admitted);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_refuses_at_once() {
        let pool = Arc::new(KdfPool::new(1, 1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let mut running = Vec::new();
        for _ in 0..2 {
            let (pool, wait) = (Arc::clone(&pool), Arc::clone(&wait));
            running.push(tokio::spawn(async move {
                pool.run(move || {
                    let _ = wait.lock().map(|w| w.recv());
                })
                .await
            }));
        }
        while pool.in_use() < 2 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        assert_eq!(pool.run(|| ()).await, Err(Busy));
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        for _ in 0..2 {
            release.send(()).expect("send");
        }
        for r in running {
            assert_eq!(r.await.expect("join"), Ok(()));
        }
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }
}
