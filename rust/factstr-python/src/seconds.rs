//! Seconds from Python (timeouts, intervals) as `Duration`s, the one conversion for every such
//! argument (SPEC §7): finite, non-negative numbers; `bool` and non-numbers are a `TypeError`,
//! anything else out of range a `ValueError` naming the argument. Never a panic:
//! `Duration::from_secs_f64` panics on values it cannot hold, so it is not used.

use std::time::Duration;

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::PyBool;

use crate::errors::{type_error, value_error};

/// Whether zero seconds is a meaningful value of the argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// Zero means "do not wait" (timeouts).
    Allowed,
    /// Zero would mean a busy loop or a certain failure (intervals, connect timeouts).
    Refused,
}

/// `value` as a duration; `what` names the argument in errors.
pub fn seconds(value: &Bound<'_, PyAny>, what: &str, zero: Zero) -> PyResult<Duration> {
    if value.is_instance_of::<PyBool>() {
        return Err(type_error(format!(
            "{what} must be a number of seconds, not bool"
        )));
    }
    let number: f64 = match value.extract() {
        Ok(number) => number,
        // An int beyond a float's range.
        Err(error) if error.is_instance_of::<PyOverflowError>(value.py()) => {
            return Err(value_error(format!("{what} is too large: {value} seconds")));
        }
        Err(_) => {
            let kind = value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "object".to_owned());
            return Err(type_error(format!(
                "{what} must be a number of seconds (int or float), not {kind}"
            )));
        }
    };
    let shown = value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| number.to_string());
    if !number.is_finite() || number < 0.0 || (number == 0.0 && zero == Zero::Refused) {
        let bound = if zero == Zero::Allowed { ">= 0" } else { "> 0" };
        return Err(value_error(format!(
            "{what} must be a finite number of seconds {bound}, got {shown}"
        )));
    }
    Duration::try_from_secs_f64(number).map_err(|_| {
        value_error(format!(
            "{what} is too large: {shown} seconds (at most {} seconds)",
            Duration::MAX.as_secs()
        ))
    })
}

/// An optional `seconds` (`None`: no limit).
pub fn optional_seconds(
    value: Option<&Bound<'_, PyAny>>,
    what: &str,
    zero: Zero,
) -> PyResult<Option<Duration>> {
    match value {
        Some(value) if !value.is_none() => seconds(value, what, zero).map(Some),
        _ => Ok(None),
    }
}

/// A keyword option of seconds: `default` when it was not given.
pub fn seconds_or(
    value: Option<&Bound<'_, PyAny>>,
    what: &str,
    zero: Zero,
    default: Duration,
) -> PyResult<Duration> {
    Ok(optional_seconds(value, what, zero)?.unwrap_or(default))
}
