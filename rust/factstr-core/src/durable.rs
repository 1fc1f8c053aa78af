//! Durable stream bookkeeping for one process: per name, the stored query, the cursor and the
//! current holder. The Memory store keeps it as its whole truth.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::store::LeaseId;
use crate::types::{DurableStreamInfo, EventQuery};

#[derive(Default)]
pub struct DurableRegistry {
    streams: BTreeMap<String, DurableEntry>,
}

struct DurableEntry {
    query: EventQuery,
    cursor: u64,
    holder: Option<LeaseId>,
}

impl DurableRegistry {
    /// Takes `name` for `lease`, creating it at cursor 0; returns the cursor.
    pub fn acquire(&mut self, name: &str, query: &EventQuery, lease: LeaseId) -> Result<u64> {
        let entry = self
            .streams
            .entry(name.to_owned())
            .or_insert_with(|| DurableEntry {
                query: query.clone(),
                cursor: 0,
                holder: None,
            });
        if !crate::matching::queries_equal(&entry.query, query) {
            return Err(Error::DurableStreamQueryMismatch(name.to_owned()));
        }
        if entry.holder.is_some() {
            return Err(Error::DurableStreamActive(name.to_owned()));
        }
        entry.holder = Some(lease);
        Ok(entry.cursor)
    }

    pub fn save_cursor(&mut self, name: &str, lease: LeaseId, position: u64) {
        if let Some(entry) = self.streams.get_mut(name) {
            if entry.holder == Some(lease) && position > entry.cursor {
                entry.cursor = position;
            }
        }
    }

    pub fn release(&mut self, name: &str, lease: LeaseId) {
        if let Some(entry) = self.streams.get_mut(name) {
            if entry.holder == Some(lease) {
                entry.holder = None;
            }
        }
    }

    pub fn list(&self) -> Vec<DurableStreamInfo> {
        self.streams
            .iter()
            .map(|(name, entry)| DurableStreamInfo {
                name: name.clone(),
                query: entry.query.clone(),
                last_processed_sequence_number: entry.cursor,
            })
            .collect()
    }

    pub fn reset(&mut self, name: &str, sequence_number: u64) -> Result<()> {
        match self.streams.get_mut(name) {
            None => Err(Error::DurableStream(format!(
                "unknown durable stream {name:?}"
            ))),
            Some(entry) if entry.holder.is_some() => {
                Err(Error::DurableStreamActive(name.to_owned()))
            }
            Some(entry) => {
                entry.cursor = sequence_number;
                Ok(())
            }
        }
    }

    pub fn delete(&mut self, name: &str) -> Result<()> {
        match self.streams.get(name) {
            Some(entry) if entry.holder.is_some() => {
                Err(Error::DurableStreamActive(name.to_owned()))
            }
            Some(_) => {
                self.streams.remove(name);
                Ok(())
            }
            None => Ok(()),
        }
    }
}
