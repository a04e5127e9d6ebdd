//! Background jobs that fill what a node keeps (the vector graph, the
//! keyword blocks, the texts, the planner's counts) so that searches do not
//! pay for it: one job at a time per kept structure, and none right after
//! the last one ended.
//!
//! Why the gap: a job that fails, or whose result does not fit the budget,
//! would otherwise be started again by the very next search, reading the
//! whole corpus on every one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The least time between the end of one job and the start of the next.
const GAP: Duration = Duration::from_secs(30);

/// Jobs started in this process, and running now: a bench waits for them
/// before it measures (see [`warming_jobs`]).
static STARTED: AtomicU64 = AtomicU64::new(0);
static RUNNING: AtomicU64 = AtomicU64::new(0);

/// How many warming jobs this process has started, and how many run now.
pub fn warming_jobs() -> (u64, u64) {
    (
        STARTED.load(Ordering::Acquire),
        RUNNING.load(Ordering::Acquire),
    )
}

/// The right to run one kept structure's warming job.
#[derive(Default)]
pub(crate) struct Warming(Arc<State>);

struct State {
    running: AtomicBool,
    /// No job starts before this.
    not_before: Mutex<Option<Instant>>,
    /// The least time from one job's end to the next one's start.
    gap: Duration,
}

impl Default for State {
    fn default() -> State {
        State {
            running: AtomicBool::new(false),
            not_before: Mutex::new(None),
            gap: GAP,
        }
    }
}

/// A running job; it ends when dropped, also when its thread panics (a
/// panic must not leave the node believing a job runs, which would stop
/// every later one).
pub(crate) struct Job {
    state: Arc<State>,
    started: Instant,
}

impl Warming {
    /// Jobs at most `gap` apart (besides their own duration): for a job
    /// that writes should start again soon, as the planner's counts.
    pub(crate) fn with_gap(gap: Duration) -> Warming {
        Warming(Arc::new(State {
            gap,
            ..State::default()
        }))
    }

    /// Claims the right to run the job; `None` if it runs, or if the last
    /// one ended less than the gap ([`GAP`] unless set) or its own
    /// duration ago.
    fn start(&self) -> Option<Job> {
        if crate::sync::lock(&self.0.not_before).is_some_and(|t| Instant::now() < t) {
            return None;
        }
        if self.0.running.swap(true, Ordering::AcqRel) {
            return None;
        }
        RUNNING.fetch_add(1, Ordering::AcqRel);
        STARTED.fetch_add(1, Ordering::AcqRel);
        Some(Job {
            state: self.0.clone(),
            started: Instant::now(),
        })
    }

    /// Runs `job` on a thread of its own named `name`, if [`Warming::start`]
    /// lets it; nothing otherwise. Both kept structures start their jobs so.
    pub(crate) fn spawn(&self, name: &str, job: impl FnOnce() + Send + 'static) {
        let Some(claim) = self.start() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _claim = claim;
                job()
            });
        if let Err(e) = spawned {
            // The claim went down with the closure: the job has ended.
            tracing::warn!("cannot start {name}: {e}");
        }
    }

    /// Lets the next job start at once (tests).
    #[cfg(test)]
    pub(crate) fn allow_now(&self) {
        *crate::sync::lock(&self.0.not_before) = Some(Instant::now());
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        *crate::sync::lock(&self.state.not_before) =
            Some(Instant::now() + took.max(self.state.gap));
        if self.state.running.swap(false, Ordering::AcqRel) {
            RUNNING.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_job_at_a_time_and_none_right_after_one() {
        let w = Warming::default();
        let job = w.start().expect("the first job starts");
        assert!(w.start().is_none(), "one job at a time");
        drop(job);
        // A job that failed quickly is not started again on the next search.
        assert!(w.start().is_none());
        w.allow_now();
        let job = w.start().expect("starts once the gap has passed");
        // A panicking job ends too.
        let r = std::thread::spawn(move || {
            let _job = job;
            panic!("job failed");
        })
        .join();
        assert!(r.is_err());
        w.allow_now();
        assert!(w.start().is_some());
    }

    #[test]
    fn a_job_without_a_gap_waits_only_its_own_duration() {
        let w = Warming::with_gap(Duration::ZERO);
        let job = w.start().expect("the first job starts");
        assert!(w.start().is_none(), "one job at a time");
        drop(job);
        // The job took microseconds; with the default gap the next would
        // wait 30 s.
        std::thread::sleep(Duration::from_millis(50));
        assert!(w.start().is_some(), "its own duration has passed");
    }
}
