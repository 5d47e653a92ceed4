//! A scoped parallel map: the work (reading and tokenizing thousands of files) is embarrassingly
//! parallel, and scoped threads keep it free of a thread-pool dependency.

use std::thread;

/// Fewer items than this per thread are not worth a thread.
const MIN_ITEMS_PER_THREAD: usize = 64;

/// `items.iter().map(f).collect()`, spread over the machine's cores; results keep `items`' order.
pub(crate) fn par_map<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(items.len() / MIN_ITEMS_PER_THREAD).clamp(1, 16);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part),
                // A panic in a worker is a bug here; surface it where it would have happened.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}
