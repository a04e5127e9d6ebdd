//! Locks that outlive a panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The guarded value, also after a panic elsewhere poisoned the lock.
///
/// Every mutex in hort guards a cache, a counter, a ledger or a table that
/// each update leaves whole (an insert, an increment, a swap), so a holder
/// that panicked left nothing half-written; refusing the value would turn
/// one failed request into every later request failing.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_value() {
        let m = std::sync::Arc::new(Mutex::new(vec![1]));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let mut g = m2.lock().expect("not poisoned yet");
            g.push(2);
            panic!("a holder panics");
        })
        .join();
        assert!(m.is_poisoned());
        lock(&m).push(3);
        assert_eq!(*lock(&m), vec![1, 2, 3]);
    }
}
