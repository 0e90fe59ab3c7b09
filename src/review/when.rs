//! Dates and times for review: parsing the FG's period bounds, and the
//! Dutch wall-clock time of a record (for office hours and day buckets).
//!
//! Stored times are RFC 3339 UTC with microseconds
//! (`2026-11-22T09:15:02.123456Z`): fixed width, so string order is time
//! order and period filters compare strings.
//!
//! Instants are `time` values, as in the audit record; what Dutch time it is
//! at an instant comes from the IANA time zone database (`Europe/Amsterdam`),
//! through jiff. There are no time-zone rules of our own here.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::ReviewError;
use crate::dutch_time::AMSTERDAM;
pub use crate::dutch_time::{dutch, dutch_day, in_office_hours};

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
            // At most 6 digits (checked above), so the exponent fits.
            let missing = u32::try_from(6 - digits.len()).ok()?;
            digits.parse::<u32>().ok()? * 10u32.pow(missing)
        }
    };
    let t = Time::from_hms_micro(h, m, sec, micros).ok()?;
    Some(PrimitiveDateTime::new(date, t).assume_utc())
}

/// The UTC instant at which Dutch calendar day `d` begins; `None` outside
/// the range jiff represents.
pub fn dutch_midnight(d: Date) -> Option<OffsetDateTime> {
    let day = jiff::civil::Date::new(
        i16::try_from(d.year()).ok()?,
        i8::try_from(u8::from(d.month())).ok()?,
        i8::try_from(d.day()).ok()?,
    )
    .ok()?;
    let start = day.to_zoned_datetime(AMSTERDAM.clone()).ok()?.timestamp();
    OffsetDateTime::from_unix_timestamp_nanos(start.as_nanosecond())
        .ok()?
        .checked_to_offset(UtcOffset::UTC)
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
        return dutch_midnight(d)
            .map(stored)
            .ok_or_else(|| ReviewError::Filter(format!("date out of range: {s}")));
    }
    parse_stored(s).map(stored).ok_or_else(|| {
        ReviewError::Filter(format!(
            "`{s}` is not a date (YYYY-MM-DD) or UTC time (YYYY-MM-DDTHH:MM:SSZ)"
        ))
    })
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
    use time::Weekday;

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

    fn utc(s: &str) -> OffsetDateTime {
        parse_stored(s).unwrap()
    }

    fn offset_hours(t: OffsetDateTime) -> i8 {
        dutch(t).offset().whole_hours()
    }

    /// The EU rule, written out only here as the test's oracle.
    fn last_sunday(year: i32, month: Month) -> Date {
        let mut d =
            Date::from_calendar_date(year, month, time::util::days_in_month(month, year)).unwrap();
        while d.weekday() != Weekday::Sunday {
            d = d.previous_day().unwrap();
        }
        d
    }

    #[test]
    fn summer_time_runs_from_the_last_sunday_of_march_to_that_of_october() {
        for year in 2024..=2040 {
            for (month, before, after) in [(Month::March, 1, 2), (Month::October, 2, 1)] {
                let day = last_sunday(year, month);
                let switch =
                    PrimitiveDateTime::new(day, Time::from_hms(1, 0, 0).unwrap()).assume_utc();
                let just_before = switch - time::Duration::microseconds(1);
                assert_eq!(offset_hours(just_before), before, "{year} {month}");
                assert_eq!(offset_hours(switch), after, "{year} {month}");
                // A day earlier and later the same offsets hold.
                assert_eq!(offset_hours(switch - time::Duration::days(1)), before);
                assert_eq!(offset_hours(switch + time::Duration::days(1)), after);
            }
        }
    }

    #[test]
    fn the_skipped_hour_never_shows_and_that_day_has_23_hours() {
        // 29 March 2026: clocks go from 02:00 CET to 03:00 CEST.
        let gap = jiff::civil::date(2026, 3, 29).at(2, 30, 0, 0);
        assert!(matches!(
            AMSTERDAM.to_ambiguous_timestamp(gap).offset(),
            jiff::tz::AmbiguousOffset::Gap { .. }
        ));
        assert_eq!(
            dutch_readable("2026-03-29T00:59:59.999999Z"),
            "29 maart 2026, 01:59"
        );
        assert_eq!(
            dutch_readable("2026-03-29T01:00:00.000000Z"),
            "29 maart 2026, 03:00"
        );
        let start = utc("2026-03-28T23:00:00Z");
        for minute in 0..(24 * 60) {
            let local = dutch(start + time::Duration::minutes(minute));
            assert_ne!(local.hour(), 2, "minute {minute}");
        }
        let day = (utc(&bound("2026-03-29", true).unwrap())
            - utc(&bound("2026-03-29", false).unwrap()))
        .whole_hours();
        assert_eq!(day, 23);
        assert_eq!(dutch_day(utc("2026-03-28T23:00:00Z")), "2026-03-29");
        assert_eq!(dutch_day(utc("2026-03-28T22:59:59Z")), "2026-03-28");
    }

    #[test]
    fn the_ambiguous_hour_shows_twice_and_that_day_has_25_hours() {
        // 25 October 2026: clocks go from 03:00 CEST back to 02:00 CET, so
        // 02:30 happens at 00:30 UTC and again at 01:30 UTC.
        let fold = jiff::civil::date(2026, 10, 25).at(2, 30, 0, 0);
        let ambiguous = AMSTERDAM.to_ambiguous_timestamp(fold);
        assert!(ambiguous.is_ambiguous());
        let earlier = ambiguous.earlier().unwrap();
        let later = ambiguous.later().unwrap();
        for (ts, expected) in [
            (earlier, "2026-10-25T00:30:00Z"),
            (later, "2026-10-25T01:30:00Z"),
        ] {
            assert_eq!(ts.to_string(), expected);
            let t = utc(expected);
            assert_eq!(dutch_readable(&stored(t)), "25 oktober 2026, 02:30");
            assert_eq!(dutch_day(t), "2026-10-25");
        }
        assert_eq!(offset_hours(utc("2026-10-25T00:30:00Z")), 2);
        assert_eq!(offset_hours(utc("2026-10-25T01:30:00Z")), 1);
        let day = (utc(&bound("2026-10-25", true).unwrap())
            - utc(&bound("2026-10-25", false).unwrap()))
        .whole_hours();
        assert_eq!(day, 25);
        assert_eq!(
            bound("2026-10-25", false).unwrap(),
            "2026-10-24T22:00:00.000000Z"
        );
        assert_eq!(
            bound("2026-10-25", true).unwrap(),
            "2026-10-25T23:00:00.000000Z"
        );
    }

    #[test]
    fn office_hours_follow_the_switches() {
        // Friday before the March switch: 05:30 UTC is 06:30 CET, too early.
        assert!(!in_office_hours(utc("2026-03-27T05:30:00Z"), 7, 19));
        // Monday after it: 05:30 UTC is 07:30 CEST, in office hours.
        assert!(in_office_hours(utc("2026-03-30T05:30:00Z"), 7, 19));
        // Friday before the October switch: 17:30 UTC is 19:30 CEST, too late.
        assert!(!in_office_hours(utc("2026-10-23T17:30:00Z"), 7, 19));
        // Monday after it: 17:30 UTC is 18:30 CET, still in office hours.
        assert!(in_office_hours(utc("2026-10-26T17:30:00Z"), 7, 19));
    }

    #[test]
    fn outside_jiffs_range_times_stay_utc() {
        let t = utc("9999-12-31T23:30:00Z");
        assert_eq!(dutch(t), t);
        assert_eq!(dutch_day(t), "9999-12-31");
        assert!(bound("9999-12-31", true).is_err());
    }
}
