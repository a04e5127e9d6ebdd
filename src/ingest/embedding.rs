//! The embedding stage of ingest: as many workers as the model has
//! sessions ([`Embedder::parallelism`], every core by default), fed with
//! batches of chunks of similar length (the model pads each batch to its
//! longest text, so mixed lengths waste work), returning vectors to the one
//! writer. Parsing runs beside it on its own pool, so a machine's cores
//! parse and embed at once instead of taking turns.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::screen::Screen;
use crate::embed::{EmbedError, Embedder};
use crate::sanitize::injection::Detection;

/// Chunks sorted by length together: enough that batches come out even,
/// few enough that the first vectors are not long in coming.
pub(crate) const WINDOW_BATCHES: usize = 32;

/// One chunk waiting for its vector: who it belongs to, how long it is.
pub(crate) struct Item {
    /// The caller's tag (document slot, chunk index).
    pub tag: (usize, usize),
    /// Tokens, for grouping by length.
    pub tokens: usize,
    /// What the model reads: the chunk, after its headings if it has any.
    pub text: String,
    /// Where the chunk itself starts in `text` (the injection screen
    /// judges only the chunk).
    pub body: usize,
}

struct Batch {
    items: Vec<Item>,
}

/// The vectors of one batch, in the order of its items (or why it failed).
pub(crate) struct Embedded {
    pub tags: Vec<(usize, usize)>,
    pub vectors: Result<Vec<Vec<f32>>, EmbedError>,
    /// The injection verdict on each item (none without a screen).
    pub verdicts: Vec<Detection>,
}

/// The workers' queues. Dropping it (or [`Stage::cancel`]) ends the workers.
pub(crate) struct Stage {
    jobs: Option<Sender<Batch>>,
    /// Finished batches, as they finish.
    pub results: Receiver<Embedded>,
    /// Items handed to workers and not yet returned.
    pub in_flight: usize,
    batch: usize,
    workers: usize,
    queue: Vec<Item>,
}

impl Stage {
    /// Starts `embedder.parallelism()` workers in `scope`, which also
    /// screen each chunk for injection if given a `screen`; `stop` makes
    /// them drop what is queued (after an error elsewhere).
    pub fn start<'scope, 'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        embedder: &'env dyn Embedder,
        screen: Option<&'env Screen>,
        batch: usize,
        stop: &'env AtomicBool,
    ) -> Stage {
        let wanted = embedder.parallelism().max(1);
        let mut workers = 0;
        let (jobs, job_rx) = unbounded::<Batch>();
        let (done, results) = unbounded::<Embedded>();
        for i in 0..wanted {
            let job_rx = job_rx.clone();
            let done = done.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hort-embed-{i}"))
                .spawn_scoped(scope, move || {
                    for b in job_rx {
                        let tags: Vec<(usize, usize)> = b.items.iter().map(|x| x.tag).collect();
                        let (vectors, verdicts) = if stop.load(Ordering::Relaxed) {
                            (
                                Err(EmbedError::Inference("ingest stopped".into())),
                                Vec::new(),
                            )
                        } else {
                            let texts: Vec<&str> =
                                b.items.iter().map(|x| x.text.as_str()).collect();
                            let bodies: Vec<usize> = b.items.iter().map(|x| x.body).collect();
                            match embed_checked(embedder, screen, &texts, &bodies) {
                                Ok((v, d)) => (Ok(v), d),
                                Err(e) => (Err(e), Vec::new()),
                            }
                        };
                        if done
                            .send(Embedded {
                                tags,
                                vectors,
                                verdicts,
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                });
            // A worker that cannot start leaves fewer workers; with none,
            // the results channel closes and the caller reports it.
            if spawned.is_ok() {
                workers += 1;
            }
        }
        Stage {
            jobs: Some(jobs),
            results,
            in_flight: 0,
            batch: batch.max(1),
            workers: workers.max(1),
            queue: Vec::new(),
        }
    }

    /// Chunks per batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Workers running.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Chunks queued here, not yet handed to a worker.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues a chunk; full windows go to the workers.
    pub fn push(&mut self, item: Item) {
        self.queue.push(item);
        self.dispatch(false);
    }

    /// Hands work to the workers: a full window (or, with `all`, everything)
    /// sorted by length and cut into batches; or, when the workers would
    /// otherwise idle, one batch of the shortest chunks queued (long ones
    /// wait for company of their own length, which keeps padding low).
    pub fn dispatch(&mut self, all: bool) {
        let window = self.batch * WINDOW_BATCHES;
        if self.queue.is_empty() || self.jobs.is_none() {
            return;
        }
        if all || self.queue.len() >= window {
            let mut items = std::mem::take(&mut self.queue);
            items.sort_by_key(|x| x.tokens);
            while !items.is_empty() {
                let rest = items.split_off(items.len().min(self.batch));
                if !self.send(items) {
                    return;
                }
                items = rest;
            }
            return;
        }
        while self.in_flight < self.batch * self.workers && self.queue.len() >= self.batch {
            self.queue.sort_by_key(|x| std::cmp::Reverse(x.tokens));
            let items = self.queue.split_off(self.queue.len() - self.batch);
            if !self.send(items) {
                return;
            }
        }
    }

    /// Sends one batch; false if every worker is gone (the results channel
    /// then says why).
    fn send(&mut self, items: Vec<Item>) -> bool {
        let Some(jobs) = &self.jobs else { return false };
        self.in_flight += items.len();
        jobs.send(Batch { items }).is_ok()
    }

    /// Notes a batch as returned.
    pub fn returned(&mut self, e: &Embedded) {
        self.in_flight = self.in_flight.saturating_sub(e.tags.len());
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.jobs.take();
    }
}

/// One call of the model (and the screen), with the counts checked.
fn embed_checked(
    embedder: &dyn Embedder,
    screen: Option<&Screen>,
    texts: &[&str],
    bodies: &[usize],
) -> Result<(Vec<Vec<f32>>, Vec<Detection>), EmbedError> {
    let (out, verdicts) = match screen {
        Some(s) => s.embed_under(embedder, texts, bodies)?,
        None => (embedder.embed_passages(texts)?, Vec::new()),
    };
    if out.len() != texts.len() || (screen.is_some() && verdicts.len() != texts.len()) {
        return Err(EmbedError::Inference(
            "embedder returned a different count".into(),
        ));
    }
    Ok((out, verdicts))
}

/// Embeds `texts` on every session of `embedder` in length-sorted batches,
/// exactly as ingest does (the ceiling `hort bench ingest` compares with).
pub fn embed_all(
    embedder: &dyn Embedder,
    texts: &[&str],
    batch: usize,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    Ok(run_all(embedder, None, texts, batch)?.0)
}

/// [`embed_all`] with each text's injection verdict from `screen`.
pub fn screen_all(
    embedder: &dyn Embedder,
    screen: &Screen,
    texts: &[&str],
    batch: usize,
) -> Result<(Vec<Vec<f32>>, Vec<Detection>), EmbedError> {
    run_all(embedder, Some(screen), texts, batch)
}

fn run_all(
    embedder: &dyn Embedder,
    screen: Option<&Screen>,
    texts: &[&str],
    batch: usize,
) -> Result<(Vec<Vec<f32>>, Vec<Detection>), EmbedError> {
    let stop = AtomicBool::new(false);
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    let mut verdicts: Vec<Detection> = vec![Detection::default(); texts.len()];
    std::thread::scope(|scope| {
        let mut stage = Stage::start(scope, embedder, screen, batch, &stop);
        for (i, t) in texts.iter().enumerate() {
            stage.queue.push(Item {
                tag: (0, i),
                tokens: embedder.count_tokens(t),
                text: t.to_string(),
                body: 0,
            });
        }
        stage.dispatch(true);
        while stage.in_flight > 0 {
            let Ok(e) = stage.results.recv() else {
                return Err(EmbedError::Inference("embedding workers stopped".into()));
            };
            stage.returned(&e);
            let vectors = match e.vectors {
                Ok(v) => v,
                Err(err) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(err);
                }
            };
            for (k, v) in vectors.into_iter().enumerate() {
                out[e.tags[k].1] = v;
            }
            for (k, d) in e.verdicts.into_iter().enumerate() {
                verdicts[e.tags[k].1] = d;
            }
        }
        Ok(())
    })?;
    if screen.is_none() {
        verdicts.clear();
    }
    Ok((out, verdicts))
}

/// A test model with several sessions that records how many calls
/// overlap (each call lingers a little, so workers that can overlap do).
#[cfg(test)]
pub(crate) struct Sessions {
    pub inner: crate::embed::HashEmbedder,
    sessions: usize,
    now: std::sync::atomic::AtomicUsize,
    /// The most calls that ran at once.
    pub most: std::sync::atomic::AtomicUsize,
}

#[cfg(test)]
impl Sessions {
    pub fn new(inner: crate::embed::HashEmbedder, sessions: usize) -> Sessions {
        Sessions {
            inner,
            sessions,
            now: Default::default(),
            most: Default::default(),
        }
    }
}

#[cfg(test)]
impl Embedder for Sessions {
    crate::embed::delegate_model_facts!(inner);
    fn embed_passages(&self, t: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(15));
        let out = self.inner.embed_passages(t);
        self.now.fetch_sub(1, Ordering::SeqCst);
        out
    }
    fn embed_query(&self, t: &str) -> Result<Vec<f32>, EmbedError> {
        self.inner.embed_query(t)
    }
    fn parallelism(&self) -> usize {
        self.sessions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::HashEmbedder;

    #[test]
    fn vectors_come_back_to_their_texts() {
        let e = Sessions::new(HashEmbedder::new(16), 3);
        let texts: Vec<String> = (0..257)
            .map(|i| "word ".repeat(1 + (i * 7919) % 50) + &i.to_string())
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let got = embed_all(&e, &refs, 5).unwrap();
        let want = e.inner.embed_passages(&refs).unwrap();
        assert_eq!(got, want);
    }

    /// A failing model stops the stage with its error, not a hang.
    #[test]
    fn a_model_error_is_returned() {
        struct Failing;
        impl Embedder for Failing {
            fn id(&self) -> &str {
                "failing"
            }
            fn dim(&self) -> usize {
                4
            }
            fn max_tokens(&self) -> usize {
                64
            }
            fn count_tokens(&self, t: &str) -> usize {
                t.len()
            }
            fn embed_passages(&self, _: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
                Err(EmbedError::Inference("boom".into()))
            }
            fn embed_query(&self, _: &str) -> Result<Vec<f32>, EmbedError> {
                Err(EmbedError::Inference("boom".into()))
            }
            fn parallelism(&self) -> usize {
                2
            }
        }
        let texts = vec!["a"; 100];
        let err = embed_all(&Failing, &texts, 4).unwrap_err();
        assert!(err.to_string().contains("boom"));
    }
}
