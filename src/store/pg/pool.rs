//! Connections on their own threads: the `postgres` client blocks, and must
//! not block inside the async runtime, so each connection lives on a worker
//! thread and callers hand it jobs ([`Pool::run`]), from sync or async code
//! alike; a caller on an async worker thread waits for the answer the way
//! tokio allows blocking there (see [`wait`]). A job that panics fails
//! alone: its worker survives and replaces the connection.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::{Client, NoTls};

use super::{lock, PgError};

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// One connection, (re)opened on demand by its worker thread.
pub struct Conn {
    config: postgres::Config,
    url: String,
    client: Option<Client>,
}

impl Conn {
    /// The connection (reconnecting if it was closed).
    pub fn client(&mut self) -> Result<&mut Client, PgError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let c = self
                .config
                .connect(NoTls)
                .map_err(|source| PgError::Connect {
                    url: self.url.clone(),
                    source,
                })?;
            self.client = Some(c);
        }
        self.client.as_mut().ok_or(PgError::Stopped)
    }
}

/// Connections on their own threads; [`Pool::run`] hands one of them a job
/// and waits for its answer (from async code too: nothing here enters a
/// runtime the caller is in).
pub struct Pool {
    tx: Mutex<mpsc::Sender<Job>>,
}

/// The URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Pool {
    /// A pool of `size` connections to `url`, each on its own thread.
    pub fn new(url: &str, size: usize) -> Result<Pool, PgError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| PgError::Url(format!("{}: {e}", redact(url))))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("hort");
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..size.max(1) {
            let rx = rx.clone();
            let mut conn = Conn {
                config: config.clone(),
                url: redact(url),
                client: None,
            };
            std::thread::Builder::new()
                .name(format!("hort-pg-{i}"))
                .spawn(move || loop {
                    let job = {
                        let r = lock(&rx);
                        r.recv()
                    };
                    match job {
                        Ok(job) => {
                            // A panicking job must not take its worker (and
                            // so the pool's capacity) with it. The
                            // connection may be mid-transaction: drop it,
                            // the next job reconnects.
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                job(&mut conn)
                            }));
                            if r.is_err() {
                                conn.client = None;
                                tracing::error!(
                                    "a PostgreSQL job panicked; its connection was closed"
                                );
                            }
                        }
                        Err(_) => return,
                    }
                })
                .map_err(|_| PgError::Stopped)?;
        }
        Ok(Pool { tx: Mutex::new(tx) })
    }

    /// Runs `f` on a pooled connection and returns its result.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, PgError> + Send + 'static,
    ) -> Result<R, PgError> {
        let (otx, orx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn: &mut Conn| {
            let r = conn.client().and_then(f);
            let _ = otx.send(r);
        });
        // Dropped unanswered: the job panicked (the worker lives on).
        let lost = || PgError::JobPanicked("see the server log".into());
        {
            let tx = lock(&self.tx);
            tx.send(job).map_err(|_| PgError::Stopped)?;
        }
        wait(|| orx.recv()).map_err(|_| lost())?
    }
}

/// Waits for a connection's answer without stalling an async runtime: on a
/// worker thread of a multi-threaded tokio runtime (a request handler, the
/// admission middleware's rate-limit check) the worker first hands its other
/// tasks to the rest of the runtime (`block_in_place`), so a slow database
/// delays only the request that waits for it. Elsewhere (plain threads,
/// `spawn_blocking`, a current-thread runtime, where `block_in_place` is not
/// allowed) it simply blocks.
fn wait<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
