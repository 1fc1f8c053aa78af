//! `iter_query` (SPEC §3): the matching records one by one, read a page at a time so that at
//! most about `page_size` records are held. Each page is its own snapshot, read with the query's
//! `min_sequence_number` set to the last record returned and `limit = page_size`: a record
//! committed meanwhile may appear in a later page, but none is skipped or repeated, since
//! sequence numbers only grow and every page starts after the last one returned.

use std::collections::VecDeque;
use std::sync::Arc;

use factstr_core as core;
use pyo3::prelude::*;

use crate::errors::{detached, value_error};
use crate::values::{record_objects, EventRecord};

const DEFAULT_PAGE_SIZE: u64 = 10_000;

/// The iterator `iter_query` returns.
#[pyclass(module = "factstr._factstr", name = "_RecordPages")]
pub struct RecordPages {
    store: Arc<dyn core::EventStore>,
    query: core::EventQuery,
    page_size: usize,
    page: VecDeque<Py<EventRecord>>,
    /// Set once a page came back short: the log had nothing more in that snapshot.
    exhausted: bool,
}

impl RecordPages {
    /// `page_size`: an int >= 1 (a bool is refused with TypeError, like every count in this API);
    /// `None` (not given) is the default, 10 000.
    pub fn new(
        store: Arc<dyn core::EventStore>,
        query: core::EventQuery,
        page_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let size = match page_size {
            Some(size) if !size.is_none() => crate::convert::sequence_number(size, "page_size")?,
            _ => DEFAULT_PAGE_SIZE,
        };
        if size < 1 {
            return Err(value_error(format!(
                "page_size must be at least 1, got {size}"
            )));
        }
        let page_size = usize::try_from(size).unwrap_or(usize::MAX);
        Ok(Self {
            store,
            query,
            page_size,
            page: VecDeque::new(),
            exhausted: false,
        })
    }

    fn next_page(&mut self, py: Python<'_>) -> PyResult<()> {
        let store = Arc::clone(&self.store);
        let (query, limit) = (self.query.clone(), self.page_size);
        let result = detached(py, move || store.query(&query, Some(limit)))?;
        self.exhausted = result.event_records.len() < self.page_size;
        if let Some(last) = result.last_returned_sequence_number {
            self.query.min_sequence_number = Some(last);
        }
        self.page = record_objects(py, result.event_records.into_iter())?
            .into_iter()
            .map(Bound::unbind)
            .collect();
        Ok(())
    }
}

#[pymethods]
impl RecordPages {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<EventRecord>>> {
        if self.page.is_empty() && !self.exhausted {
            self.next_page(py)?;
        }
        Ok(self.page.pop_front())
    }
}
