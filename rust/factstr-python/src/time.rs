//! Commit times (microseconds since the epoch, UTC) as timezone-aware Python datetimes.

use pyo3::prelude::*;
use pyo3::types::{PyDateTime, PyTzInfo};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

pub fn datetime_from_micros<'py>(
    py: Python<'py>,
    micros: i64,
    utc: &Bound<'py, PyTzInfo>,
) -> PyResult<Bound<'py, PyDateTime>> {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let micro = micros.rem_euclid(MICROS_PER_SECOND) as u32;
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    PyDateTime::new(
        py,
        year as i32,
        month,
        day,
        (second_of_day / 3600) as u8,
        (second_of_day / 60 % 60) as u8,
        (second_of_day % 60) as u8,
        micro,
        Some(utc),
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01, computed over 400-year eras
/// (146,097 days each) that start on March 1st, so that the leap day ends a year.
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u8;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u8;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
    }
}
