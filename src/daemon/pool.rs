//! The bounded pool the KDF runs on: `workers` threads of its own and at most `queue` jobs
//! waiting. A request that finds it full is answered 503 at once, and the async threads
//! (and with them `/healthz`) never run a KDF. A worker takes the next job the moment it
//! finishes one, so the cores stay busy with PBKDF2 under load.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Semaphore};

/// The pool was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct KdfPool {
    admitted: Arc<Semaphore>,
    jobs: Mutex<Sender<Job>>,
    workers: usize,
    capacity: usize,
}

impl KdfPool {
    pub(crate) fn new(workers: usize, queue: usize) -> KdfPool {
        let workers = workers.max(1);
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..workers {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("kdf-{i}"))
                .spawn(move || work(&receiver));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "鍵導出のスレッドを起動できません");
            }
        }
        KdfPool {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            jobs: Mutex::new(sender),
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

    /// Runs `job` on a pool thread; `Err(Busy)` at once when `workers + queue` jobs are
    /// already admitted.
    pub(crate) async fn run<R, F>(&self, job: F) -> Result<R, Busy>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        let (done, result) = oneshot::channel();
        let boxed: Job = Box::new(move || {
            let result = job();
            // The slot is free before the answer is, so whoever sees the answer sees it free.
            drop(admitted);
            let _ = done.send(result);
        });
        self.jobs
            .lock()
            .map_err(|_| Busy)?
            .send(boxed)
            .map_err(|_| Busy)?;
        result.await.map_err(|_| Busy)
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let next = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            // A job that panics answers Busy (its sender is dropped); the worker lives on.
            Ok(job) => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    tracing::error!("鍵導出の処理が異常終了しました");
                }
            }
            Err(_) => return, // the pool is gone
        }
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
