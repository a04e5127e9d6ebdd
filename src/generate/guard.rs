//! The output checks: an answer (and each streamed sentence) must not copy
//! the system prompt or text the asker may not see. Streaming relays only
//! whole sentences that pass, so a stream never shows what the answer
//! withholds.

use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedSender};

use super::router::Piece;
use super::{Block, StreamEvent};
use crate::acl::Principal;
use crate::config::PolicyTarget;
use crate::gateway::Gateway;
use crate::sanitize::pii::Masker;
use crate::sanitize::spotlight::{copies, KnownRuns, Spotlight};
use crate::store::IndexRead;

/// Texts the principal may not see that share words with `answer` (for the
/// check that an answer does not carry hidden text; an error means nothing
/// to check against, never a failed answer).
fn invisible_texts(view: &dyn IndexRead, principal: &Principal, answer: &str) -> Vec<String> {
    view.hidden_texts(principal, answer, 5).unwrap_or_else(|e| {
        tracing::warn!("leak check skipped: {e}");
        Vec::new()
    })
}

/// The output checks of one answer, shared by the final answer and each
/// streamed sentence (so a stream never shows what the answer withholds).
#[derive(Clone)]
pub(super) struct OutputGuard {
    view: Arc<dyn IndexRead>,
    principal: Principal,
    system: String,
    /// Word runs the asker already has (its question, the sources it may see).
    known: Arc<KnownRuns>,
    /// The content policy's answer rules.
    gateway: Arc<Gateway>,
}

impl OutputGuard {
    /// Whether `text` copies the system prompt or a text the asker may not see.
    /// Reads the index (a keyword search): call it off the async runtime.
    pub(super) fn check(&self, text: &str) -> Option<Block> {
        if copies(text, &self.system, &self.known) {
            return Some(Block::SystemPrompt);
        }
        if invisible_texts(self.view.as_ref(), &self.principal, text)
            .iter()
            .any(|hidden| copies(text, hidden, &self.known))
        {
            return Some(Block::HiddenText);
        }
        self.gateway
            .policy()
            .check(text, PolicyTarget::Answer)
            .map(|_| Block::Policy)
    }

    pub(super) async fn check_async(&self, text: String) -> Option<Block> {
        let g = self.clone();
        tokio::task::spawn_blocking(move || g.check(&text))
            .await
            .unwrap_or(Some(Block::HiddenText)) // a crashed check withholds (fail closed)
    }
}

impl OutputGuard {
    /// The checks for one answer to `question` from `hits` (whose text, like
    /// the question, the asker already has).
    pub(super) fn new<'a>(
        view: Arc<dyn IndexRead>,
        principal: &Principal,
        system: &str,
        known: impl Iterator<Item = &'a str>,
        gateway: Arc<Gateway>,
    ) -> OutputGuard {
        OutputGuard {
            view,
            principal: principal.clone(),
            system: system.to_string(),
            known: Arc::new(KnownRuns::of(known)),
            gateway,
        }
    }
}

/// Forwards whole sentences, unmasked, without markers and checked: each
/// sentence is sent only if what the client would then hold passes the
/// output checks. Once a check fires, the client is told to drop what it
/// got (`reset`) and nothing more is streamed (the final answer is then the
/// refusal). A reset from the chain (another provider starts) starts over.
/// Returns the block of the last attempt, if one fired.
pub(super) async fn relay_sentences(
    mut rx: mpsc::UnboundedReceiver<Piece>,
    out: UnboundedSender<StreamEvent>,
    masker: Masker,
    spotlight: Spotlight,
    guard: OutputGuard,
) -> Option<Block> {
    let mut buf = String::new();
    let mut shown = String::new();
    let mut blocked: Option<Block> = None;
    while let Some(p) = rx.recv().await {
        let head = match p {
            Piece::Reset => {
                buf.clear();
                shown.clear();
                blocked = None;
                let _ = out.send(StreamEvent::Reset);
                continue;
            }
            Piece::Text(t) => {
                buf.push_str(&t);
                // Up to the last sentence end followed by whitespace.
                let cut = buf
                    .char_indices()
                    .zip(buf.chars().skip(1))
                    .filter(|((_, c), next)| {
                        matches!(c, '.' | '!' | '?' | '\n') && next.is_whitespace()
                    })
                    .map(|((i, c), _)| i + c.len_utf8())
                    .last();
                match cut {
                    Some(i) => buf.drain(..i).collect::<String>(),
                    None => continue,
                }
            }
        };
        if blocked.is_none() {
            blocked = emit(&head, &mut shown, &out, &masker, &spotlight, &guard).await;
        }
    }
    if !buf.is_empty() && blocked.is_none() {
        blocked = emit(&buf, &mut shown, &out, &masker, &spotlight, &guard).await;
    }
    blocked
}

/// Sends one checked piece; on a block, tells the client to drop the stream.
async fn emit(
    piece: &str,
    shown: &mut String,
    out: &UnboundedSender<StreamEvent>,
    masker: &Masker,
    spotlight: &Spotlight,
    guard: &OutputGuard,
) -> Option<Block> {
    let t = masker.unmask(piece);
    if t.is_empty() || spotlight.leaked(&t) {
        return None;
    }
    let candidate = format!("{shown}{t}");
    if let Some(b) = guard.check_async(candidate.clone()).await {
        let _ = out.send(StreamEvent::Reset);
        return Some(b);
    }
    *shown = candidate;
    let _ = out.send(StreamEvent::Delta(t));
    None
}
