//! Dates and times for review: parsing the FG's period bounds, and the
//! Dutch wall-clock time of a record (for office hours and day buckets).
//!
//! Stored times are RFC 3339 UTC with microseconds
//! (`2026-11-22T09:15:02.123456Z`): fixed width, so string order is time
//! order and period filters compare strings.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

use super::ReviewError;

/// Formats a UTC instant the way records store it.
pub fn stored(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let day = u8::try_from(num(8..10)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// Parses a stored time (or any `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`) as UTC.
pub fn parse_stored(s: &str) -> Option<OffsetDateTime> {
    let date = parse_date(s.get(0..10)?)?;
    if s.as_bytes().get(10) != Some(&b'T') || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u8>().ok();
    let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let micros = match s.get(19..s.len() - 1) {
        Some("") | None => 0,
        Some(frac) => {
            let digits = frac.strip_prefix('.')?;
            if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            digits.parse::<u32>().ok()? * 10u32.pow(6 - digits.len() as u32)
        }
    };
    let t = Time::from_hms_micro(h, m, sec, micros).ok()?;
    Some(PrimitiveDateTime::new(date, t).assume_utc())
}

/// The UTC instant at which Dutch calendar day `d` begins.
pub fn dutch_midnight(d: Date) -> OffsetDateTime {
    let utc = PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc();
    for hours in [2, 1] {
        let t = utc - time::Duration::hours(hours);
        let local = dutch(t);
        if local.date() == d && local.hour() == 0 {
            return t;
        }
    }
    utc - time::Duration::hours(1)
}

/// A period bound as the FG writes it: a date (`2026-11-01`, a Dutch
/// calendar day) or a stored-style UTC time. `end = true` makes a date
/// inclusive (the bound becomes the start of the next Dutch day). Returns the
/// bound in stored form, for string comparison.
pub fn bound(s: &str, end: bool) -> Result<String, ReviewError> {
    let s = s.trim();
    if let Some(d) = parse_date(s) {
        let d = if end {
            d.next_day()
                .ok_or_else(|| ReviewError::Filter(format!("date out of range: {s}")))?
        } else {
            d
        };
        return Ok(stored(dutch_midnight(d)));
    }
    parse_stored(s).map(stored).ok_or_else(|| {
        ReviewError::Filter(format!(
            "`{s}` is not a date (YYYY-MM-DD) or UTC time (YYYY-MM-DDTHH:MM:SSZ)"
        ))
    })
}

/// The last Sunday of `month` in `year`.
fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let mut d =
        Date::from_calendar_date(year, month, time::util::days_in_month(month, year)).ok()?;
    while d.weekday() != Weekday::Sunday {
        d = d.previous_day()?;
    }
    Some(d)
}

/// Dutch wall-clock time (CET, CEST from the last Sunday of March to the last
/// Sunday of October, switching at 01:00 UTC as in the whole EU). No tz
/// database needed for this one zone.
pub fn dutch(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    let y = t.year();
    let switch = |m| {
        last_sunday(y, m).map(|d| {
            PrimitiveDateTime::new(d, Time::from_hms(1, 0, 0).unwrap_or(Time::MIDNIGHT))
                .assume_utc()
        })
    };
    let summer = match (switch(Month::March), switch(Month::October)) {
        (Some(a), Some(b)) => t >= a && t < b,
        _ => false,
    };
    let hours = if summer { 2 } else { 1 };
    t.to_offset(UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC))
}

/// Office hours: Monday to Friday, `start_hour` (inclusive) to `end_hour`
/// (exclusive), Dutch time.
pub fn in_office_hours(t: OffsetDateTime, start_hour: u8, end_hour: u8) -> bool {
    let d = dutch(t);
    let weekday = !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
    weekday && d.hour() >= start_hour && d.hour() < end_hour
}

/// `YYYY-MM-DD` of the Dutch calendar day of `t`.
pub fn dutch_day(t: OffsetDateTime) -> String {
    let d = dutch(t);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `22 november 2026, 10:15` in Dutch time, for reports read by people.
pub fn dutch_readable(stored_time: &str) -> String {
    const MONTHS: [&str; 12] = [
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ];
    match parse_stored(stored_time) {
        Some(t) => {
            let d = dutch(t);
            format!(
                "{} {} {}, {:02}:{:02}",
                d.day(),
                MONTHS[usize::from(u8::from(d.month())) - 1],
                d.year(),
                d.hour(),
                d.minute()
            )
        }
        None => stored_time.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_dates_inclusive_and_times() {
        // Dates are Dutch calendar days: CET in November, CEST in July.
        assert_eq!(
            bound("2026-11-01", false).unwrap(),
            "2026-10-31T23:00:00.000000Z"
        );
        assert_eq!(
            bound("2026-11-30", true).unwrap(),
            "2026-11-30T23:00:00.000000Z"
        );
        assert_eq!(
            bound("2026-07-01", false).unwrap(),
            "2026-06-30T22:00:00.000000Z"
        );
        // The day summer time starts begins in winter time.
        assert_eq!(
            bound("2026-03-29", false).unwrap(),
            "2026-03-28T23:00:00.000000Z"
        );
        assert_eq!(
            bound("2026-11-30T10:00:00Z", true).unwrap(),
            "2026-11-30T10:00:00.000000Z"
        );
        assert!(bound("30-11-2026", false).is_err());
        assert!(bound("2026-02-30", false).is_err());
    }

    #[test]
    fn dutch_time_follows_summer_time() {
        let winter = parse_stored("2026-01-15T07:30:00.000000Z").unwrap();
        assert_eq!(dutch(winter).hour(), 8);
        let summer = parse_stored("2026-07-15T07:30:00.000000Z").unwrap();
        assert_eq!(dutch(summer).hour(), 9);
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(
            dutch(parse_stored("2026-03-29T00:59:00Z").unwrap()).hour(),
            1
        );
        assert_eq!(
            dutch(parse_stored("2026-03-29T01:00:00Z").unwrap()).hour(),
            3
        );
        assert_eq!(
            dutch(parse_stored("2026-10-25T00:59:00Z").unwrap()).hour(),
            2
        );
        assert_eq!(
            dutch(parse_stored("2026-10-25T01:00:00Z").unwrap()).hour(),
            2
        );
    }

    #[test]
    fn office_hours_are_weekdays_in_dutch_time() {
        // Monday 16 November 2026, 07:30 UTC = 08:30 CET.
        let t = parse_stored("2026-11-16T07:30:00Z").unwrap();
        assert!(in_office_hours(t, 8, 18));
        // 17:30 UTC = 18:30 CET: after hours.
        assert!(!in_office_hours(
            parse_stored("2026-11-16T17:30:00Z").unwrap(),
            8,
            18
        ));
        // Saturday.
        assert!(!in_office_hours(
            parse_stored("2026-11-21T10:00:00Z").unwrap(),
            8,
            18
        ));
        assert_eq!(
            dutch_readable("2026-11-16T07:30:00.000000Z"),
            "16 november 2026, 08:30"
        );
    }
}
