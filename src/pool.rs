//! The one worker pool of every batch (infer, judge, score): scoped threads pull items from a
//! shared source, and their results come back to the calling thread as they finish, so one
//! place writes output, updates progress and decides to stop.
//!
//! The source is pulled under a lock, one item at a time, so it can be a lazy stream (a JSONL
//! reader), and results wait in a channel of one slot per worker, so memory stays bounded by
//! the items in flight. A panic in `work` is caught and
//! handed over as [`Done::Panicked`] instead of ending the batch: one hostile item never loses
//! the others' results.

use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// What a worker hands back for one item.
#[derive(Debug)]
pub enum Done<R> {
    /// `work` returned.
    Finished(R),
    /// `work` panicked; the message, if it had one.
    Panicked(String),
}

/// Runs `work` on up to `workers` threads over the items `next` yields (until it returns
/// `None`), and hands each result to `done` on the calling thread, in completion order.
/// `done` returning [`ControlFlow::Break`] stops the pool: no new items are taken, the items
/// in flight finish and are still handed to `done` (nothing finished is lost; what `done`
/// returns for them is ignored), and the first break value is returned.
///
/// ```
/// use std::ops::ControlFlow;
/// use start::pool::{Done, run};
///
/// let mut items = 1..=100u64;
/// let mut sum = 0;
/// let stopped: Option<()> = run(4, || items.next(), |n| n * n, |done| {
///     if let Done::Finished(square) = done {
///         sum += square;
///     }
///     ControlFlow::Continue(())
/// });
/// assert_eq!((stopped, sum), (None, 338_350));
/// ```
pub fn run<T, R, B>(
    workers: usize,
    next: impl FnMut() -> Option<T> + Send,
    work: impl Fn(T) -> R + Sync,
    mut done: impl FnMut(Done<R>) -> ControlFlow<B>,
) -> Option<B>
where
    T: Send,
    R: Send,
{
    let source = Mutex::new(next);
    let stop = AtomicBool::new(false);
    // Bounded, so a slow `done` holds the workers back instead of piling up results.
    let (tx, rx) = mpsc::sync_channel::<Done<R>>(workers.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let tx = tx.clone();
            let (source, stop, work) = (&source, &stop, &work);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let item = {
                        let mut next = source.lock().unwrap_or_else(|p| p.into_inner());
                        next()
                    };
                    let Some(item) = item else { break };
                    let result = match catch_unwind(AssertUnwindSafe(|| work(item))) {
                        Ok(r) => Done::Finished(r),
                        Err(panic) => Done::Panicked(panic_message(panic.as_ref())),
                    };
                    if tx.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut stopped = None;
        for result in rx {
            if let ControlFlow::Break(b) = done(result) {
                stop.store(true, Ordering::Relaxed);
                stopped.get_or_insert(b);
            }
        }
        stopped
    })
}

/// Maps `work` over `items` on up to `workers` threads; results in the items' order. A panic
/// in `work` becomes `Err` with its message, in that item's place.
///
/// ```
/// let squares = start::pool::map_ordered(3, &[1, 2, 3, 4], |n| n * n);
/// let squares: Vec<i32> = squares.into_iter().map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
pub fn map_ordered<T: Sync, R: Send>(
    workers: usize,
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
) -> Vec<Result<R, String>> {
    let mut results: Vec<Result<R, String>> = Vec::with_capacity(items.len());
    results.resize_with(items.len(), || Err("not run".into()));
    let mut indices = 0..items.len();
    run(
        workers.min(items.len()),
        || indices.next(),
        |i| (i, work(&items[i])),
        |done| {
            match done {
                Done::Finished((i, r)) => results[i] = Ok(r),
                // The index is lost with the panic; its slot keeps its "not run" error below.
                Done::Panicked(_) => {}
            }
            ControlFlow::<()>::Continue(())
        },
    );
    results
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a worker panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_stops_taking_items() {
        let mut items = 0..1_000_000u32;
        let mut seen = 0;
        let stopped = run(
            2,
            || items.next(),
            |n| n,
            |_| {
                seen += 1;
                if seen == 10 {
                    ControlFlow::Break("enough")
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert_eq!(stopped, Some("enough"));
        assert!(
            items.next().is_some_and(|n| n < 1000),
            "the pool kept pulling"
        );
    }

    #[test]
    fn a_panicking_item_is_reported_and_the_rest_finish() {
        let mut items = 0..20u32;
        let (mut ok, mut panicked) = (0, Vec::new());
        run(
            3,
            || items.next(),
            |n| {
                assert!(n != 7, "item seven");
                n
            },
            |done| {
                match done {
                    Done::Finished(_) => ok += 1,
                    Done::Panicked(m) => panicked.push(m),
                }
                ControlFlow::<()>::Continue(())
            },
        );
        assert_eq!(ok, 19);
        assert_eq!(panicked, ["item seven"]);
    }

    #[test]
    fn map_ordered_keeps_order_and_marks_panics() {
        let out = map_ordered(4, &[1, 2, 3], |&n| {
            assert!(n != 2, "two");
            n * 10
        });
        assert_eq!(out[0], Ok(10));
        assert!(out[1].is_err());
        assert_eq!(out[2], Ok(30));
    }
}
