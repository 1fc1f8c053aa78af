//! Group commit on SQLite (see `group_commit`): several callers' appends in the one
//! `BEGIN IMMEDIATE` transaction of the writer connection, so they share one fsync. Each request
//! runs inside a savepoint, through the same `writes::append` as a lone append (numbered after
//! the batches before it, its condition checked against the log including them); a request that
//! fails is rolled back to its savepoint and fails alone. A failed COMMIT fails them all (the
//! whole transaction is rolled back: nothing of the group is written).

use rusqlite::Connection;

use super::backend;
use super::writes;
use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::idempotency::IdempotencyKey;
use crate::sql::prepared::PreparedEvent;
use crate::types::AppendResult;

/// Runs each request in a savepoint of the caller's write transaction. `Err` when the
/// transaction itself is lost (a savepoint could not be taken or undone, or SQLite rolled the
/// whole transaction back after an error, e.g. a full disk): then the caller rolls back and every
/// request fails with it.
pub fn append_each(
    connection: &Connection,
    requests: &[(
        Vec<PreparedEvent>,
        Option<Condition<'_>>,
        Option<&IdempotencyKey>,
    )],
) -> Result<Vec<Result<AppendResult>>> {
    let mut results = Vec::with_capacity(requests.len());
    for (events, condition, key) in requests {
        run(connection, "SAVEPOINT factstr_group_member")?;
        match writes::append(connection, events, *condition, *key) {
            Ok(result) => {
                run(connection, "RELEASE factstr_group_member")?;
                results.push(Ok(result));
            }
            Err(error) => {
                if connection.is_autocommit() {
                    // SQLite ended the transaction: what the requests before wrote is gone too.
                    return Err(error);
                }
                run(connection, "ROLLBACK TO factstr_group_member")?;
                run(connection, "RELEASE factstr_group_member")?;
                results.push(Err(error));
            }
        }
    }
    Ok(results)
}

fn run(connection: &Connection, sql: &str) -> Result<()> {
    connection
        .prepare_cached(sql)
        .map_err(backend)?
        .execute([])
        .map_err(backend)?;
    Ok(())
}

/// Every request's result when the group's transaction failed as a whole.
pub fn all_failed(count: usize, error: Error) -> Vec<Result<AppendResult>> {
    vec![Err(error); count]
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::sqlite::{SqliteOptions, SqliteStore};
    use crate::store::{AppendRequest, EventStore, Storage};
    use crate::types::{AppendResult, EventFilter, EventQuery, NewEvent};
    use crate::Condition;
    use serde_json::json;

    fn open(name: &str) -> SqliteStore {
        let folder = std::env::temp_dir().join(format!(
            "factstr-core-test-{}-group-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        SqliteStore::open(folder.join("events.db"), SqliteOptions::default()).unwrap()
    }

    fn one(event_type: &str, id: u64) -> Vec<NewEvent> {
        vec![NewEvent::new(event_type, json!({ "id": id }))]
    }

    /// A request without an idempotency key.
    fn request<'a>(events: Vec<NewEvent>, condition: Option<Condition<'a>>) -> AppendRequest<'a> {
        AppendRequest {
            events,
            condition,
            idempotency_key: None,
        }
    }

    fn range(first: u64, last: u64) -> AppendResult {
        AppendResult {
            first_sequence_number: first,
            last_sequence_number: last,
            committed_count: last - first + 1,
        }
    }

    fn of_type(event_type: &str) -> EventQuery {
        EventQuery {
            filters: Some(vec![EventFilter {
                event_types: Some(vec![event_type.to_owned()]),
                payload_predicates: None,
            }]),
            min_sequence_number: None,
        }
    }

    #[test]
    fn each_request_of_a_group_is_numbered_and_checked_after_the_ones_before_it() {
        let store = open("order");
        store.append(one("a", 0)).unwrap();
        let a = of_type("a");
        let results = store.storage().append_group(vec![
            request(vec![NewEvent::new("a", json!({"id": 1})); 3], None),
            // Expects the version before the group: the batch before it in the group moved it.
            request(
                one("a", 2),
                Some(Condition::VersionIs {
                    context: &a,
                    expected: Some(1),
                }),
            ),
            // Expects the version the first request made: it holds.
            request(
                one("a", 3),
                Some(Condition::VersionIs {
                    context: &a,
                    expected: Some(4),
                }),
            ),
            request(
                one("b", 4),
                Some(Condition::NoneAfter {
                    context: &a,
                    after: Some(4),
                }),
            ),
            request(one("b", 5), None),
        ]);
        assert_eq!(
            results,
            vec![
                Ok(range(2, 4)),
                Err(Error::ConditionalAppendConflict {
                    expected: Some(1),
                    actual: Some(4)
                }),
                Ok(range(5, 5)),
                Err(Error::ConditionalAppendConflict {
                    expected: Some(4),
                    actual: Some(5)
                }),
                Ok(range(6, 6)),
            ]
        );
        let log = store.read_batches(0, &EventQuery::all(), 100).unwrap();
        let batches: Vec<(u64, usize, u64)> = log
            .batches
            .iter()
            .map(|b| {
                let id = b.records[0].payload["id"].as_u64().unwrap();
                (b.last_sequence_number, b.records.len(), id)
            })
            .collect();
        assert_eq!(batches, vec![(1, 1, 0), (4, 3, 1), (5, 1, 3), (6, 1, 5)]);
        // A condition on the payload index sees the group's rows (the index kept up).
        let id_three = EventQuery {
            filters: Some(vec![EventFilter {
                event_types: None,
                payload_predicates: Some(vec![json!({"id": 3})]),
            }]),
            min_sequence_number: None,
        };
        assert_eq!(
            store
                .query(&id_three, None)
                .unwrap()
                .current_context_version,
            Some(5)
        );
    }

    #[test]
    fn a_refused_batch_fails_alone_and_the_others_commit() {
        let store = open("refused");
        store
            .storage()
            .write(|c| {
                c.execute_batch(
                    "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.event_type = 'poison' \
                     BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
                )
                .map_err(super::backend)
            })
            .unwrap();
        let results = store.storage().append_group(vec![
            request(one("a", 1), None),
            request(
                vec![
                    NewEvent::new("a", json!({})),
                    NewEvent::new("poison", json!({})),
                ],
                None,
            ),
            request(one("a", 3), None),
        ]);
        assert_eq!(results[0], Ok(range(1, 1)));
        assert!(
            matches!(&results[1], Err(Error::Backend(m)) if m.contains("poisoned")),
            "{results:?}"
        );
        assert_eq!(results[2], Ok(range(2, 2)));
        let log = store.query(&EventQuery::all(), None).unwrap().event_records;
        let ids: Vec<_> = log.iter().map(|r| r.payload["id"].clone()).collect();
        assert_eq!(ids, vec![json!(1), json!(3)]);
    }

    #[test]
    fn a_failed_commit_fails_every_request_and_writes_nothing() {
        let store = open("commit");
        store.append(one("a", 0)).unwrap();
        // A deferred foreign key fails only at COMMIT: an event of type "poison" adds a row
        // whose parent does not exist.
        store
            .storage()
            .write(|c| {
                c.execute_batch(
                    "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
                     CREATE TABLE child (parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED); \
                     CREATE TRIGGER poison AFTER INSERT ON events WHEN NEW.event_type = 'poison' \
                     BEGIN INSERT INTO child VALUES (42); END;",
                )
                .map_err(super::backend)
            })
            .unwrap();
        let results = store.storage().append_group(vec![
            request(one("a", 1), None),
            request(one("poison", 2), None),
            request(one("a", 3), None),
        ]);
        assert_eq!(results.len(), 3);
        for result in &results {
            assert!(
                matches!(result, Err(Error::Backend(m)) if m.contains("FOREIGN KEY")),
                "{result:?}"
            );
        }
        assert_eq!(store.head().unwrap(), 1);
        // The writer connection is usable again, and nothing of the group took a number.
        assert_eq!(store.append(one("a", 4)).unwrap(), range(2, 2));
    }

    #[test]
    fn concurrent_appends_get_disjoint_consecutive_ranges_matching_their_batches() {
        let store = open("threads");
        let threads = 8u64;
        let appends = 25u64;
        std::thread::scope(|scope| {
            for thread in 0..threads {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..appends {
                        let size = 1 + (i % 3) as usize;
                        let id = thread * 1000 + i;
                        let events = vec![NewEvent::new("t", json!({ "id": id })); size];
                        let got = store.append(events).unwrap();
                        assert_eq!(got.committed_count, size as u64);
                        let read = store
                            .read_batches(got.first_sequence_number - 1, &EventQuery::all(), 1)
                            .unwrap();
                        let batch = &read.batches[0];
                        assert_eq!(batch.last_sequence_number, got.last_sequence_number);
                        assert_eq!(batch.records.len(), size);
                        assert!(batch.records.iter().all(|r| r.payload["id"] == id));
                    }
                });
            }
        });
        let total: u64 = (0..appends).map(|i| 1 + i % 3).sum::<u64>() * threads;
        assert_eq!(store.head().unwrap(), total);
    }
}
