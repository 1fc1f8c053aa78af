//! Commit times (SPEC §2.5): UTC, microsecond precision, and their RFC 3339 text form as the
//! SQLite layout stores them (`2026-11-26T13:47:05.123456Z`, trailing fraction zeros trimmed).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::types::Timestamp;

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// The commit time of a batch committed now.
pub fn now_micros() -> Timestamp {
    from_system_time(SystemTime::now())
}

/// A clock reading (or a time a database returned) as microseconds since 1970, UTC.
pub fn from_system_time(time: SystemTime) -> Timestamp {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_micros() as Timestamp,
        Err(before) => -(before.duration().as_micros() as Timestamp),
    }
}

/// The inverse of `from_system_time`, for a database driver that takes a `SystemTime`.
pub fn to_system_time(micros: Timestamp) -> SystemTime {
    let offset = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

/// The civil UTC fields of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub microsecond: u32,
}

pub fn to_civil(micros: Timestamp) -> Civil {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (second_of_day / 3600) as u8,
        minute: (second_of_day / 60 % 60) as u8,
        second: (second_of_day % 60) as u8,
        microsecond: micros.rem_euclid(MICROS_PER_SECOND) as u32,
    }
}

/// RFC 3339 in UTC with a `Z`; the fraction keeps up to six digits, trailing zeros trimmed, and
/// is left out when zero (the form the upstream SQLite store writes).
pub fn format_rfc3339(micros: Timestamp) -> String {
    let c = to_civil(micros);
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    if c.microsecond != 0 {
        let fraction = format!("{:06}", c.microsecond);
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`), keeping microseconds.
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut micros = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, b) in fraction.bytes().take(digits).enumerate() {
            if i < 6 {
                micros = micros * 10 + i64::from(b - b'0');
            }
        }
        for _ in digits..6 {
            micros *= 10;
        }
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(year, month as u8, day as u8);
    let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * MICROS_PER_SECOND + micros)
}

/// The proleptic Gregorian date of a day count since 1970-01-01, computed over 400-year eras
/// (146,097 days each) that start on March 1st, so that the leap day ends a year.
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u8;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u8;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_times_round_trip_on_both_sides_of_1970() {
        for micros in [0, 1, -1, 1_764_000_000_123_456, -86_400_000_001] {
            assert_eq!(from_system_time(to_system_time(micros)), micros);
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
        for days in [-800_000, -1, 0, 59, 11_016, 20_783, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn rfc3339_round_trip_and_upstream_forms() {
        let t = 1_795_700_000_123_456;
        assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        assert_eq!(
            format_rfc3339(1_795_700_000_100_000),
            "2026-11-26T13:33:20.1Z"
        );
        assert_eq!(
            format_rfc3339(1_795_700_000_000_000),
            "2026-11-26T13:33:20Z"
        );
        assert_eq!(
            parse_rfc3339("2026-11-26T13:33:20.123456789Z"),
            Some(1_795_700_000_123_456)
        );
        assert_eq!(
            parse_rfc3339("2026-11-26T14:33:20+01:00"),
            Some(1_795_700_000_000_000)
        );
        assert_eq!(parse_rfc3339("2026-11-26 12:13:20"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
