//! Commit times (microseconds since the epoch, UTC) as timezone-aware Python datetimes.

use factstr_core::clock::to_civil;
use pyo3::prelude::*;
use pyo3::types::{PyDateTime, PyTzInfo};

pub fn datetime_from_micros<'py>(
    py: Python<'py>,
    micros: i64,
    utc: &Bound<'py, PyTzInfo>,
) -> PyResult<Bound<'py, PyDateTime>> {
    let c = to_civil(micros);
    PyDateTime::new(
        py,
        c.year as i32,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.microsecond,
        Some(utc),
    )
}
