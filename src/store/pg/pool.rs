//! Connections: `tokio-postgres` clients in a `deadpool` pool, sized from
//! `[store] pool_size`, with timeouts on waiting for a connection, opening
//! one and checking one that comes back.
//!
//! One runtime in the process drives every database connection (their
//! socket tasks live there, whoever asked for them), so a store outlives
//! the runtime a test or a request started it in, and synchronous callers
//! (the storage contract is synchronous: the service layer calls it from
//! `spawn_blocking`, the CLI from plain threads) have somewhere to run
//! their queries. Async callers use [`Pool::get`] and await in place;
//! synchronous ones hand a job to [`Pool::run`], which runs it on the pool's
//! runtime and waits for the answer without stalling an async worker (see
//! [`wait`]). A job that panics fails alone: its connection goes back with
//! its transaction rolled back (`tokio-postgres` does that when a
//! transaction is dropped), and nothing shrinks the pool.

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use futures_util::future::BoxFuture;
use tokio::runtime::{Handle, Runtime};
use tokio_postgres::NoTls;

use super::PgError;

/// A pooled connection (it goes back to the pool when dropped).
pub type Conn = deadpool_postgres::Client;

/// How long opening a connection may take, unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default for how long a caller waits for a free connection
/// (`[store] pool_timeout_s`).
pub const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(10);

/// How big a pool is and how long a caller waits for a connection
/// (`[store] pool_size`, `pool_timeout_s`).
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Connections at most.
    pub size: usize,
    /// How long a caller waits for a free connection (and as long for a
    /// new one to open) before the request fails as busy.
    pub timeout: Duration,
}

impl PoolOptions {
    /// The configured size and wait (`[store]`).
    pub fn of(store: &crate::config::StoreConfig) -> PoolOptions {
        PoolOptions {
            size: store.pool_size,
            timeout: Duration::from_secs_f64(store.pool_timeout_s),
        }
    }
}

impl From<usize> for PoolOptions {
    fn from(size: usize) -> PoolOptions {
        PoolOptions {
            size,
            timeout: DEFAULT_POOL_TIMEOUT,
        }
    }
}

/// A pool of connections to one server.
pub struct Pool {
    pool: deadpool_postgres::Pool,
    /// For dedicated connections (with the password; never shown).
    config: tokio_postgres::Config,
    /// The connections' runtime ([`runtime`]).
    rt: Handle,
    url: String,
}

/// The runtime that drives every connection and runs [`Pool::run`]'s jobs:
/// one per process, as many workers as cores (jobs mostly wait on the
/// network; decoding rows is their CPU work). Never dropped: a runtime may
/// not be dropped inside another one's async context, and connections of
/// stores still alive need it to the end.
fn runtime() -> Result<Handle, PgError> {
    static RT: std::sync::OnceLock<Option<Runtime>> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .clamp(1, 8),
            )
            .thread_name("hort-pg")
            .enable_all()
            .build()
            .map_err(|e| tracing::error!("cannot start the database runtime: {e}"))
            .ok()
    })
    .as_ref()
    .map(|rt| rt.handle().clone())
    .ok_or(PgError::Stopped)
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

/// The connection settings of `url`, with hort's defaults where it is
/// silent (connect timeout, application name).
pub fn config_of(url: &str, app: &str) -> Result<tokio_postgres::Config, PgError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| PgError::Url(format!("{}: {e}", redact(url))))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name(app);
    }
    Ok(config)
}

/// Settings of every connection. Statements are prepared once per
/// connection (one round trip per query instead of two), but planned for
/// their parameters each time, as unprepared ones are: a plan cached for
/// one principal's access sets or one question's terms can be orders of
/// magnitude wrong for the next (the vector and keyword plans were measured
/// to flip on statistics alone).
async fn session(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute("SET plan_cache_mode = force_custom_plan")
        .await
}

/// Opens connections and spawns their socket tasks on the pool's runtime.
struct Connector(Handle);

impl deadpool_postgres::Connect for Connector {
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let config = config.clone();
        let rt = self.0.clone();
        // Opened on the pool's runtime whoever asks: a socket belongs to
        // the reactor of the runtime that opened it, and a caller's runtime
        // (a test's, a CLI command's) may end before the connection does.
        Box::pin(async move {
            let on = rt.clone();
            match rt.spawn(async move { open(&config, &on).await }).await {
                Ok(r) => r,
                Err(e) => match e.try_into_panic() {
                    Ok(p) => std::panic::resume_unwind(p),
                    // The runtime lives as long as the process.
                    Err(_) => Err(tokio_postgres::Error::__private_api_timeout()),
                },
            }
        })
    }
}

/// Opens a connection, spawns its socket task on `rt` and applies hort's
/// session settings.
async fn open(
    config: &tokio_postgres::Config,
    rt: &Handle,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let task = rt.spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("PostgreSQL connection closed: {e}");
        }
    });
    session(&client).await?;
    Ok((client, task))
}

impl Pool {
    /// A pool of connections to `url` (a size, or [`PoolOptions`]).
    pub fn new(url: &str, options: impl Into<PoolOptions>) -> Result<Pool, PgError> {
        let PoolOptions { size, timeout } = options.into();
        let config = config_of(url, "hort")?;
        let size = size.max(1);
        let rt = runtime()?;
        let manager = Manager::from_connect(
            config.clone(),
            Connector(rt.clone()),
            ManagerConfig {
                // A closed connection is replaced; a broken one fails its
                // next statement and is dropped then (no extra round trip
                // per checkout).
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| PgError::Url(format!("{}: {e}", redact(url))))?;
        Ok(Pool {
            pool,
            config,
            rt,
            url: redact(url),
        })
    }

    /// A connection, for async code (awaited in place).
    pub async fn get(&self) -> Result<Conn, PgError> {
        checkout(&self.pool, &self.url).await
    }

    /// A connection for a job that spans many calls (a writer's
    /// transaction), outside the pool's size; driven by the pool's runtime
    /// and used through [`Pool::block`].
    pub fn dedicated(&self, app: &str) -> Result<tokio_postgres::Client, PgError> {
        let mut config = self.config.clone();
        config.application_name(app);
        let url = self.url.clone();
        self.block(async move {
            let (client, _task) = open(&config, &self.rt)
                .await
                .map_err(|source| PgError::Connect { url, source })?;
            Ok(client)
        })
    }

    /// Runs `f` on a pooled connection, on the pool's runtime, and waits for
    /// its result: for synchronous callers.
    pub fn run<R, F>(&self, f: F) -> Result<R, PgError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> BoxFuture<'c, Result<R, PgError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let url = self.url.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let r = match checkout(&pool, &url).await {
                Ok(mut c) => f(&mut c).await,
                Err(e) => Err(e),
            };
            let _ = tx.send(r);
        });
        // Dropped unanswered: the job panicked (its connection went back
        // with its transaction rolled back).
        wait(|| rx.recv()).map_err(|_| PgError::JobPanicked("see the server log".into()))?
    }

    /// Runs a future to its end on the pool's runtime from synchronous code
    /// that holds a connection of its own ([`Pool::dedicated`]).
    pub fn block<T>(&self, fut: impl Future<Output = Result<T, PgError>>) -> Result<T, PgError> {
        wait(|| self.rt.block_on(fut))
    }
}

/// A connection from `pool` (at `url`, redacted), or why there is none.
async fn checkout(pool: &deadpool_postgres::Pool, url: &str) -> Result<Conn, PgError> {
    use deadpool_postgres::PoolError as E;
    pool.get().await.map_err(|e| match e {
        E::Backend(source) => PgError::Connect {
            url: url.to_string(),
            source,
        },
        E::Timeout(_) => PgError::Busy(format!(
            "{url}: no connection free or opened in time ({} in the pool)",
            pool.status().max_size
        )),
        other => PgError::Busy(format!("{url}: {other}")),
    })
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Idle connections close now, busy ones when their job ends.
        self.pool.close();
    }
}

/// Waits for a connection's answer without stalling an async runtime: on a
/// worker thread of a multi-threaded tokio runtime (a request handler) the
/// worker first hands its other tasks to the rest of the runtime
/// (`block_in_place`), so a slow database delays only the request that
/// waits for it. Elsewhere (plain threads, `spawn_blocking`, a
/// current-thread runtime, where `block_in_place` is not allowed) it simply
/// blocks.
fn wait<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::RuntimeFlavor;
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
