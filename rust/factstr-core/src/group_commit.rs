//! Group commit: appends that arrive from several threads of one process while an append is
//! running are committed together, in one transaction of the storage (one fsync), instead of one
//! transaction each.
//!
//! A leader/follower queue, per store object:
//! - A caller that finds no append running commits alone, at once: a single writer waits for
//!   nobody.
//! - A caller that finds one running queues its request and sleeps. When the running commit ends,
//!   its caller hands the lead to the first one queued, which takes the queue (bounded, see
//!   `MAX_GROUP_REQUESTS`, `MAX_GROUP_EVENTS`) and commits it as one group
//!   (`Storage::append_group`), then hands each member its own result and the lead to the next.
//!
//! Each request keeps its own batch, numbering and condition: the storage checks the conditions
//! in queue order, each against the log including the group's batches before it, and a
//! conflicting or failing request fails alone (see `Storage::append_group`). Which of two racing
//! callers is queued first is the order the lock gave them, as it is without a queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::condition::Condition;
use crate::error::{catch_panic, Error, Result};
use crate::idempotency::IdempotencyKey;
use crate::store::AppendRequest;
use crate::types::{AppendResult, EventQuery, NewEvent};

/// At most this many requests in one group; the rest wait for the next one. It bounds how long
/// one transaction holds the storage's write lock (and how much a failed COMMIT takes down).
pub const MAX_GROUP_REQUESTS: usize = 128;
/// A group takes no more requests once it holds this many events (its first request is taken
/// whatever its size).
pub const MAX_GROUP_EVENTS: usize = 16_384;

/// Commits requests: one (the alone path) or a group of several, in queue order; one result per
/// request, in the same order.
pub type Commit<'s> = dyn Fn(Vec<AppendRequest<'_>>) -> Vec<Result<AppendResult>> + 's;

/// The queue of one store object.
#[derive(Default)]
pub struct GroupCommit {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// Whether a commit (alone or a group) is running; its caller hands the lead on when done.
    running: bool,
    waiting: VecDeque<Queued>,
    /// The `FORKS` count the state above belongs to.
    forks: u64,
}

/// How many times this process is a forked child of a process that had stores (raised by
/// `after_fork_in_child`, the binding's at-fork hook). A counter read at each append, not the
/// process id: a `getpid` call would cost a Memory store's append about a tenth of its time.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// In a forked child, before any other code runs there: every queue's state is its parent's.
pub fn after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

impl Queue {
    /// Called with the queue locked, before it is used. After `fork()` the child has a copy of
    /// the parent's queue: a commit "running" in a thread that does not exist in the child and
    /// callers queued that nobody will wake, so the child's first append queued behind them and
    /// hung for good (a Memory store stays usable in a forked child; SQL stores are closed there
    /// before they get here). Those calls are the parent's: the child starts with an idle queue.
    fn adopt(&mut self) {
        let forks = FORKS.load(Ordering::Relaxed);
        if self.forks != forks {
            self.running = false;
            self.waiting.clear();
            self.forks = forks;
        }
    }
}

/// A request waiting for a leader. The condition's query is copied: the caller's borrow cannot
/// travel to another thread.
struct Queued {
    events: Vec<NewEvent>,
    condition: Option<OwnedCondition>,
    idempotency_key: Option<IdempotencyKey>,
    slot: Arc<Slot>,
}

enum OwnedCondition {
    VersionIs {
        context: EventQuery,
        expected: Option<u64>,
    },
    NoneAfter {
        context: EventQuery,
        after: Option<u64>,
    },
}

impl OwnedCondition {
    fn from_borrowed(condition: Condition<'_>) -> Self {
        match condition {
            Condition::VersionIs { context, expected } => OwnedCondition::VersionIs {
                context: context.clone(),
                expected,
            },
            Condition::NoneAfter { context, after } => OwnedCondition::NoneAfter {
                context: context.clone(),
                after,
            },
        }
    }

    fn borrow(&self) -> Condition<'_> {
        match self {
            OwnedCondition::VersionIs { context, expected } => Condition::VersionIs {
                context,
                expected: *expected,
            },
            OwnedCondition::NoneAfter { context, after } => Condition::NoneAfter {
                context,
                after: *after,
            },
        }
    }
}

/// Where a queued caller sleeps until it has its result or the lead.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    changed: Condvar,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Waiting,
    /// It is this caller's turn to commit the queue.
    Lead,
    Done(Result<AppendResult>),
    /// Taken by the caller (after `Done`).
    Taken,
}

impl Slot {
    fn set(&self, state: SlotState) {
        *self.state.lock() = state;
        self.changed.notify_one();
    }

    /// Sleeps until the slot holds a result or the lead; takes it.
    fn wait(&self) -> SlotState {
        let mut state = self.state.lock();
        while matches!(*state, SlotState::Waiting) {
            self.changed.wait(&mut state);
        }
        std::mem::replace(&mut *state, SlotState::Taken)
    }
}

impl GroupCommit {
    pub fn new() -> Self {
        Self::default()
    }

    /// Commits `request` through `commit`: alone at once when no commit is running, else in a
    /// group with the other requests queued meanwhile. Returns this request's own result.
    pub fn append(&self, request: AppendRequest<'_>, commit: &Commit<'_>) -> Result<AppendResult> {
        let mut queue = self.queue.lock();
        queue.adopt();
        if !queue.running {
            queue.running = true;
            drop(queue);
            // A panic in the storage must not leave `running` set: every later append would
            // queue behind a commit that never ends.
            let result = catch_panic(|| {
                commit(vec![request])
                    .pop()
                    .unwrap_or_else(|| Err(missing_result()))
            });
            self.hand_on();
            return result;
        }
        let slot = Arc::new(Slot::default());
        // (Every field of the request travels: a new one must be added here and in `lead`.)
        let AppendRequest {
            events,
            condition,
            idempotency_key,
        } = request;
        queue.waiting.push_back(Queued {
            events,
            condition: condition.map(OwnedCondition::from_borrowed),
            idempotency_key,
            slot: Arc::clone(&slot),
        });
        drop(queue);
        match slot.wait() {
            SlotState::Done(result) => result,
            SlotState::Lead => {
                let result = self.lead(&slot, commit);
                self.hand_on();
                result
            }
            SlotState::Waiting | SlotState::Taken => {
                unreachable!("`wait` returns a result or the lead")
            }
        }
    }

    /// Takes the queue (bounded; `own` is its first request: the lead goes to the front) and
    /// commits it as one group; hands every other member its result and returns `own`'s.
    fn lead(&self, own: &Arc<Slot>, commit: &Commit<'_>) -> Result<AppendResult> {
        let group = self.take_group();
        let count = group.len();
        let mut slots = Vec::with_capacity(count);
        let mut conditions = Vec::with_capacity(count);
        let mut batches = Vec::with_capacity(count);
        for queued in group {
            slots.push(queued.slot);
            conditions.push(queued.condition);
            batches.push((queued.events, queued.idempotency_key));
        }
        let requests: Vec<AppendRequest<'_>> = batches
            .into_iter()
            .zip(&conditions)
            .map(|((events, idempotency_key), condition)| AppendRequest {
                events,
                condition: condition.as_ref().map(OwnedCondition::borrow),
                idempotency_key,
            })
            .collect();
        // A panic in the storage fails the group's calls instead of leaving them asleep.
        let mut results = catch_panic(|| Ok(commit(requests)))
            .unwrap_or_else(|error| vec![Err(error); count])
            .into_iter();
        let mut own_result = Err(missing_result());
        for slot in &slots {
            let result = results.next().unwrap_or_else(|| Err(missing_result()));
            if Arc::ptr_eq(slot, own) {
                own_result = result;
            } else {
                slot.set(SlotState::Done(result));
            }
        }
        own_result
    }

    /// The first requests of the queue, up to the bounds (at least one).
    fn take_group(&self) -> Vec<Queued> {
        let mut queue = self.queue.lock();
        let mut group = Vec::new();
        let mut events = 0;
        while let Some(next) = queue.waiting.front() {
            let more = events + next.events.len();
            if !group.is_empty() && (group.len() >= MAX_GROUP_REQUESTS || more > MAX_GROUP_EVENTS) {
                break;
            }
            events = more;
            group.extend(queue.waiting.pop_front());
        }
        group
    }

    /// After a commit: the first queued caller leads next; with nobody queued, the next caller
    /// commits alone.
    fn hand_on(&self) {
        let mut queue = self.queue.lock();
        match queue.waiting.front() {
            Some(next) => next.slot.set(SlotState::Lead),
            None => queue.running = false,
        }
    }
}

fn missing_result() -> Error {
    Error::Backend("internal error (a bug in factstr): the storage returned no result for an append of the group".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::time::{Duration, Instant};

    impl GroupCommit {
        fn queued(&self) -> usize {
            self.queue.lock().waiting.len()
        }
    }

    /// One event whose payload names its caller.
    fn batch(caller: u64, size: usize) -> Vec<NewEvent> {
        (0..size)
            .map(|_| NewEvent::new("t", json!({ "caller": caller })))
            .collect()
    }

    /// A request with no condition and no key.
    fn plain(events: Vec<NewEvent>) -> AppendRequest<'static> {
        AppendRequest {
            idempotency_key: None,
            events,
            condition: None,
        }
    }

    fn caller_of(request: &AppendRequest<'_>) -> u64 {
        request.events[0].payload["caller"].as_u64().unwrap()
    }

    /// Waits until `count` callers are queued (a test's other threads have arrived).
    fn until_queued(group: &GroupCommit, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while group.queued() < count {
            assert!(
                Instant::now() < deadline,
                "the callers never queued: {} of {count}",
                group.queued()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A fake storage: each request's result names its caller (as its first number); caller 13
    /// fails. Records the sizes of the commits it was given.
    struct Recorder {
        sizes: Mutex<Vec<usize>>,
        /// While set, the first commit waits for `hold_for` callers to queue.
        hold_for: usize,
        held: AtomicBool,
        /// How many requests came with a condition.
        conditions: AtomicUsize,
    }

    impl Recorder {
        fn new(hold_for: usize) -> Self {
            Self {
                sizes: Mutex::new(Vec::new()),
                hold_for,
                held: AtomicBool::new(false),
                conditions: AtomicUsize::new(0),
            }
        }

        fn commit(
            &self,
            group: &GroupCommit,
            requests: Vec<AppendRequest<'_>>,
        ) -> Vec<Result<AppendResult>> {
            if !self.held.swap(true, Ordering::SeqCst) {
                until_queued(group, self.hold_for);
            }
            self.sizes.lock().push(requests.len());
            let conditions = requests.iter().filter(|r| r.condition.is_some()).count();
            self.conditions.fetch_add(conditions, Ordering::SeqCst);
            requests
                .iter()
                .map(|request| match caller_of(request) {
                    // A condition travels with its own request.
                    caller
                        if request
                            .condition
                            .is_some_and(|c| c.named_version() != Some(caller)) =>
                    {
                        Err(Error::Backend(format!(
                            "caller {caller}: another's condition"
                        )))
                    }
                    13 => Err(Error::Backend("caller 13 fails".to_owned())),
                    caller => Ok(AppendResult {
                        first_sequence_number: caller,
                        last_sequence_number: caller,
                        committed_count: request.events.len() as u64,
                    }),
                })
                .collect()
        }
    }

    #[test]
    fn a_lone_caller_commits_alone_at_once() {
        let group = GroupCommit::new();
        let recorder = Recorder::new(0);
        for caller in 1..=3 {
            let result = group
                .append(plain(batch(caller, 2)), &|r| recorder.commit(&group, r))
                .unwrap();
            assert_eq!(result.first_sequence_number, caller);
        }
        assert_eq!(*recorder.sizes.lock(), vec![1, 1, 1]);
    }

    #[test]
    fn callers_arriving_during_a_commit_share_the_next_one_and_each_gets_its_own_result() {
        let group = GroupCommit::new();
        let callers = 16u64;
        // The first commit (alone) waits until the other 15 are queued; they then go as one.
        let recorder = Recorder::new(callers as usize - 1);
        let query = EventQuery::all();
        let results: Vec<(u64, Result<AppendResult>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (1..=callers)
                .map(|caller| {
                    let (group, recorder, query) = (&group, &recorder, &query);
                    scope.spawn(move || {
                        if caller > 1 {
                            // The first caller starts the commit that the others queue behind.
                            until_queued_or_running(group);
                        }
                        let condition = (caller != 1).then_some(Condition::VersionIs {
                            context: query,
                            expected: Some(caller),
                        });
                        let result = group.append(
                            AppendRequest {
                                idempotency_key: None,
                                events: batch(caller, 1),
                                condition,
                            },
                            &|r| recorder.commit(group, r),
                        );
                        (caller, result)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        for (caller, result) in results {
            match caller {
                13 => assert_eq!(result, Err(Error::Backend("caller 13 fails".to_owned()))),
                _ => assert_eq!(result.unwrap().first_sequence_number, caller),
            }
        }
        assert_eq!(*recorder.sizes.lock(), vec![1, callers as usize - 1]);
        assert_eq!(
            recorder.conditions.load(Ordering::SeqCst),
            callers as usize - 1
        );
        // The queue is free again: the next caller commits alone.
        group
            .append(plain(batch(99, 1)), &|r| recorder.commit(&group, r))
            .unwrap();
        assert_eq!(recorder.sizes.lock().last(), Some(&1));
    }

    /// Waits until some caller runs a commit (so that this one queues).
    fn until_queued_or_running(group: &GroupCommit) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !group.queue.lock().running {
            assert!(Instant::now() < deadline, "no commit started");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_group_takes_at_most_its_bound_of_events() {
        let group = GroupCommit::new();
        // Three callers with half the bound each queue behind a held commit: the first two fit in
        // one group, the third goes in the next.
        let recorder = Recorder::new(3);
        let half = MAX_GROUP_EVENTS / 2;
        std::thread::scope(|scope| {
            let first =
                scope.spawn(|| group.append(plain(batch(1, 1)), &|r| recorder.commit(&group, r)));
            until_queued_or_running(&group);
            let mut others = Vec::new();
            for caller in 2..=4 {
                let (group, recorder) = (&group, &recorder);
                others.push(scope.spawn(move || {
                    group.append(plain(batch(caller, half)), &|r| recorder.commit(group, r))
                }));
                if caller < 4 {
                    // (Not after the last: the held commit may end and the queue empty at once.)
                    until_queued(group, caller as usize - 1);
                }
            }
            first.join().unwrap().unwrap();
            for other in others {
                other.join().unwrap().unwrap();
            }
        });
        assert_eq!(*recorder.sizes.lock(), vec![1, 2, 1]);
    }

    #[test]
    fn a_forked_child_does_not_queue_behind_its_parents_commit() {
        // The queue as a child process inherits it when its parent forked during a commit with
        // callers queued: the commit's and the callers' threads do not exist in the child.
        let group = GroupCommit::new();
        {
            let mut queue = group.queue.lock();
            queue.forks = FORKS.load(Ordering::Relaxed).wrapping_add(1);
            queue.running = true;
            queue.waiting.push_back(Queued {
                events: batch(7, 1),
                condition: None,
                idempotency_key: None,
                slot: Arc::new(Slot::default()),
            });
        }
        // The child's append commits alone at once (it used to wait for a lead forever), and the
        // parent's queued call is not committed here.
        let recorder = Recorder::new(0);
        let result = group
            .append(plain(batch(2, 1)), &|r| recorder.commit(&group, r))
            .unwrap();
        assert_eq!(result.first_sequence_number, 2);
        assert_eq!(*recorder.sizes.lock(), vec![1]);
        assert_eq!(group.queued(), 0);
        assert!(!group.queue.lock().running);
    }

    #[test]
    fn a_panicking_commit_fails_its_callers_and_frees_the_queue() {
        let group = GroupCommit::new();
        let calls = AtomicBool::new(false);
        let panicking = |_: Vec<AppendRequest<'_>>| -> Vec<Result<AppendResult>> {
            calls.store(true, Ordering::SeqCst);
            panic!("storage bug")
        };
        let error = group.append(plain(batch(1, 1)), &panicking).unwrap_err();
        assert!(
            matches!(&error, Error::Backend(m) if m.contains("storage bug")),
            "{error:?}"
        );
        assert!(calls.load(Ordering::SeqCst));
        let recorder = Recorder::new(0);
        group
            .append(plain(batch(2, 1)), &|r| recorder.commit(&group, r))
            .unwrap();
    }
}
