//! The calendar: the one place where the ledger's milliseconds become dates and times that
//! people read, and where dates that people type become milliseconds.
//!
//! The ledger keeps every time as [`TimeMs`], milliseconds since 1970-01-01T00:00:00Z
//! (Unix time, which counts no leap seconds). This module converts, and nothing else: it never
//! reads a clock. The arithmetic of the proleptic Gregorian calendar (leap years, the length
//! of each month, the days between two dates) is `jiff`'s; this module adds the strict
//! textual forms hutong accepts and the two ways it shows a time:
//!
//! - RFC 3339 in UTC to the millisecond, `2026-01-01T00:00:00.000Z`, for reports and JSON
//!   that other programs read ([`format_utc`]);
//! - China Standard Time to the minute, `2026-01-01 08:00`, for the people of the
//!   departments ([`format_china`], and [`format_china_zh`] for Chinese sentences). China
//!   Standard Time is the fixed offset UTC+8 all year (China has kept no daylight saving time
//!   since 1991), so no time-zone database is needed.
//!
//! The calendar covers the years 1 to 9999, the years a four-digit `YYYY` can write. A time
//! after [`TIME_MS_MAX`] (9999-12-31T23:59:59.999Z) has no calendar text: the `format_*`
//! functions return [`CalendarError::TimeBeyondCalendar`], and the `display_*` functions,
//! which must always produce a text, fall back to [`milliseconds_text`].
//!
//! ```
//! use hutong_core::calendar;
//!
//! let time_ms = calendar::parse_date("2026-01-01").unwrap();
//! assert_eq!(time_ms, 1_767_225_600_000);
//! assert_eq!(calendar::format_utc(time_ms).unwrap(), "2026-01-01T00:00:00.000Z");
//! assert_eq!(calendar::format_china(time_ms).unwrap(), "2026-01-01 08:00");
//! assert_eq!(calendar::format_china_zh(time_ms).unwrap(), "2026年1月1日 08:00");
//! assert_eq!(calendar::parse_timestamp("2026-01-01T08:00:00+08:00").unwrap(), time_ms);
//!
//! let error = calendar::parse_date("2026-02-31").unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "2026-02-31 is not a day of the calendar: February 2026 has 28 days"
//! );
//! ```

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime, Time};
use thiserror::Error;

/// Milliseconds since the Unix epoch, UTC. All times on the ledger use it; dates exist only
/// where people read or write them.
pub type TimeMs = u64;

/// The last millisecond the calendar can write: 9999-12-31T23:59:59.999Z.
pub const TIME_MS_MAX: TimeMs = 253_402_300_799_999;

/// China Standard Time is UTC+8, with no daylight saving time.
const CHINA_STANDARD_TIME_OFFSET_MS: i64 = 8 * MS_PER_HOUR;

/// The last millisecond whose China Standard Time still falls in the year 9999.
pub const CHINA_TIME_MS_MAX: TimeMs = TIME_MS_MAX - CHINA_STANDARD_TIME_OFFSET_MS as TimeMs;

const MS_PER_MINUTE: i64 = 60 * 1_000;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;

/// Time zero of the ledger, as a civil date and time of UTC.
///
/// The conversions go through `jiff`'s civil date-times rather than its `Timestamp`: a
/// `Timestamp` keeps room for any offset up to ±26 hours and so ends on 9999-12-30 at
/// 22:00 UTC, while the civil range runs to the last millisecond of the year 9999 and so
/// covers every time a four-digit year can write.
const EPOCH: DateTime = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);

const YEAR_MIN: u16 = 1;
const YEAR_MAX: u16 = 9999;

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// What was wrong with a date, a time or an instant.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CalendarError {
    #[error(
        "{text:?} is not a date of the form YYYY-MM-DD (four-digit year, two-digit month and day)"
    )]
    DateForm { text: String },
    #[error(
        "{text:?} is not an RFC 3339 time of the form YYYY-MM-DDTHH:MM:SS, optionally .mmm, then Z or ±HH:MM: {problem}"
    )]
    TimestampForm { text: String, problem: &'static str },
    #[error("the year {year} is outside the calendar's years 1 to 9999")]
    YearOutOfRange { year: u16 },
    #[error(
        "{year:04}-{month:02}-{day:02} is not a day of the calendar: a year has months 01 to 12"
    )]
    NoSuchMonth { year: u16, month: u8, day: u8 },
    #[error(
        "{year:04}-{month:02}-{day:02} is not a day of the calendar: {month_name} {year} has {days_in_month} days"
    )]
    NoSuchDay {
        year: u16,
        month: u8,
        day: u8,
        month_name: &'static str,
        days_in_month: u8,
    },
    #[error(
        "{hour:02}:{minute:02}:{second:02} is not a time of day: hours run 00 to 23, minutes and seconds 00 to 59 (Unix time counts no leap second)"
    )]
    NoSuchTime { hour: u8, minute: u8, second: u8 },
    #[error("{text:?} has a UTC offset of {hours:02}:{minutes:02}: offsets run to 23:59")]
    NoSuchOffset {
        text: String,
        hours: u8,
        minutes: u8,
    },
    #[error(
        "{text:?} gives {digits} digits of a second: the ledger counts whole milliseconds, at most 3 digits"
    )]
    FractionTooFine { text: String, digits: usize },
    #[error("{text:?} is before 1970-01-01T00:00:00Z, where the ledger's time begins")]
    BeforeEpoch { text: String },
    #[error("{text:?} is after 9999-12-31T23:59:59.999Z, the calendar's last instant")]
    AfterCalendar { text: String },
    #[error(
        "{time_ms} ms since the epoch is after 9999-12-31 23:59:59.999 {zone}, the calendar's last instant"
    )]
    TimeBeyondCalendar { time_ms: TimeMs, zone: &'static str },
}

/// Checks that `year`-`month`-`day` is a day of the proleptic Gregorian calendar in the
/// years 1 to 9999 (for the birth dates of resident identity numbers, GB 11643-1999).
pub fn check_date(year: u16, month: u8, day: u8) -> Result<(), CalendarError> {
    civil_date(year, month, day).map(|_| ())
}

/// Parses a calendar date, strictly `YYYY-MM-DD` naming a day of the calendar, into the
/// milliseconds of its midnight in UTC. A date before 1970-01-01 is a day of the calendar but
/// no time of the ledger: [`CalendarError::BeforeEpoch`].
pub fn parse_date(text: &str) -> Result<TimeMs, CalendarError> {
    let date = date_of_text(text)?;
    let since_epoch_ms = date
        .to_datetime(Time::midnight())
        .duration_since(EPOCH)
        .as_millis();
    TimeMs::try_from(since_epoch_ms).map_err(|_| CalendarError::BeforeEpoch {
        text: text.to_owned(),
    })
}

/// Whether `text` is strictly `YYYY-MM-DD` naming a day of the calendar in the years 1 to
/// 9999: the check of a licence's face fields of kind Date.
pub fn is_calendar_date(text: &str) -> bool {
    date_of_text(text).is_ok()
}

/// Parses an RFC 3339 date-time (section 5.6) into UTC milliseconds:
/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction of one to three digits, then `Z` or an
/// offset `±HH:MM`. As RFC 3339 allows, `T` and `Z` may be lower case. A time without an
/// offset is refused rather than guessed, and so are leap seconds (`:60`), which Unix time
/// does not count, and fractions finer than the ledger's millisecond.
pub fn parse_timestamp(text: &str) -> Result<TimeMs, CalendarError> {
    let form_error = |problem: &'static str| CalendarError::TimestampForm {
        text: text.to_owned(),
        problem,
    };
    let date_text = text
        .get(..DATE_LENGTH)
        .ok_or_else(|| form_error("it is too short"))?;
    let date = date_of_text(date_text).map_err(|error| match error {
        CalendarError::DateForm { .. } => form_error("the date must be YYYY-MM-DD"),
        other => other,
    })?;
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        position: DATE_LENGTH,
    };
    if !cursor.take_any(b"Tt") {
        return Err(form_error("the date and the time of day are joined by T"));
    }
    let hour_minute = cursor.two_digit_pair();
    let (Some((hour, minute)), true, Some(second)) =
        (hour_minute, cursor.take(b':'), cursor.two_digits())
    else {
        return Err(form_error("the time of day must be HH:MM:SS"));
    };
    let mut millisecond: i32 = 0;
    if cursor.take(b'.') {
        let digits = cursor.digits();
        if digits.is_empty() {
            return Err(form_error("a decimal point must be followed by digits"));
        }
        if digits.len() > 3 {
            return Err(CalendarError::FractionTooFine {
                text: text.to_owned(),
                digits: digits.len(),
            });
        }
        // ".5" is 500 ms: each digit is worth a tenth of the one before.
        let mut scale = 100;
        for digit in digits {
            millisecond += i32::from(digit - b'0') * scale;
            scale /= 10;
        }
    }
    let offset_ms = if cursor.take_any(b"Zz") {
        0
    } else {
        let sign: i64 = match cursor.next() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(form_error("no offset: end with Z for UTC, or with ±HH:MM")),
        };
        let Some((hours, minutes)) = cursor.two_digit_pair() else {
            return Err(form_error("an offset must be ±HH:MM"));
        };
        if hours > 23 || minutes > 59 {
            return Err(CalendarError::NoSuchOffset {
                text: text.to_owned(),
                hours,
                minutes,
            });
        }
        sign * (i64::from(hours) * MS_PER_HOUR + i64::from(minutes) * MS_PER_MINUTE)
    };
    if !cursor.at_end() {
        return Err(form_error("text follows the offset"));
    }
    let no_such_time = CalendarError::NoSuchTime {
        hour,
        minute,
        second,
    };
    let time = match (
        i8::try_from(hour),
        i8::try_from(minute),
        i8::try_from(second),
    ) {
        (Ok(hour), Ok(minute), Ok(second)) => {
            Time::new(hour, minute, second, millisecond * 1_000_000).map_err(|_| no_such_time)?
        }
        _ => return Err(no_such_time),
    };
    // The offset says how far the local time runs ahead of UTC.
    let local_ms = date.to_datetime(time).duration_since(EPOCH).as_millis();
    let utc_ms = local_ms - i128::from(offset_ms);
    if utc_ms < 0 {
        return Err(CalendarError::BeforeEpoch {
            text: text.to_owned(),
        });
    }
    TimeMs::try_from(utc_ms)
        .ok()
        .filter(|time_ms| *time_ms <= TIME_MS_MAX)
        .ok_or_else(|| CalendarError::AfterCalendar {
            text: text.to_owned(),
        })
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: RFC 3339 in UTC, to the millisecond, always with three digits
/// of fraction so that the texts sort as the times do.
pub fn format_utc(time_ms: TimeMs) -> Result<String, CalendarError> {
    let at = civil_at(time_ms, 0, "UTC")?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    ))
}

/// `YYYY-MM-DD HH:MM` in China Standard Time (UTC+8), the time every department works in.
/// Seconds are cut, not rounded: 08:00:59 is still 08:00.
pub fn format_china(time_ms: TimeMs) -> Result<String, CalendarError> {
    let at = civil_at(time_ms, CHINA_STANDARD_TIME_OFFSET_MS, "UTC+8")?;
    Ok(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute()
    ))
}

/// `YYYY年M月D日 HH:MM` in China Standard Time, the same instant as [`format_china`] in the
/// way a Chinese sentence writes a date (no leading zeros in month and day).
pub fn format_china_zh(time_ms: TimeMs) -> Result<String, CalendarError> {
    let at = civil_at(time_ms, CHINA_STANDARD_TIME_OFFSET_MS, "UTC+8")?;
    Ok(format!(
        "{}年{}月{}日 {:02}:{:02}",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute()
    ))
}

/// [`format_utc`], or [`milliseconds_text`] after [`TIME_MS_MAX`]: for reports that must
/// show every time they are given.
pub fn display_utc(time_ms: TimeMs) -> String {
    format_utc(time_ms).unwrap_or_else(|_| milliseconds_text(time_ms))
}

/// [`format_china`], or [`milliseconds_text`] after [`CHINA_TIME_MS_MAX`]: for pages that
/// must show every time they are given.
pub fn display_china(time_ms: TimeMs) -> String {
    format_china(time_ms).unwrap_or_else(|_| milliseconds_text(time_ms))
}

/// `N ms since the epoch`: how a time beyond the calendar is shown. Such a time can only come
/// from a typing mistake (a validity that ends after the year 9999), and the raw number lets
/// the reader see the mistake.
pub fn milliseconds_text(time_ms: TimeMs) -> String {
    format!("{time_ms} ms since the epoch")
}

const DATE_LENGTH: usize = "YYYY-MM-DD".len();

/// The date written strictly as `YYYY-MM-DD`.
fn date_of_text(text: &str) -> Result<Date, CalendarError> {
    let form_error = || CalendarError::DateForm {
        text: text.to_owned(),
    };
    let bytes = text.as_bytes();
    if bytes.len() != DATE_LENGTH {
        return Err(form_error());
    }
    let mut cursor = Cursor { bytes, position: 0 };
    let year = cursor
        .two_digits()
        .zip(cursor.two_digits())
        .map(|(high, low)| u16::from(high) * 100 + u16::from(low));
    let (Some(year), true) = (year, cursor.take(b'-')) else {
        return Err(form_error());
    };
    let (Some(month), true) = (cursor.two_digits(), cursor.take(b'-')) else {
        return Err(form_error());
    };
    let Some(day) = cursor.two_digits() else {
        return Err(form_error());
    };
    civil_date(year, month, day)
}

/// The day `year`-`month`-`day`, if the calendar has it; `jiff` decides, and the error says
/// why not.
fn civil_date(year: u16, month: u8, day: u8) -> Result<Date, CalendarError> {
    if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
        return Err(CalendarError::YearOutOfRange { year });
    }
    let (Some(month_name), Ok(calendar_year), Ok(calendar_month)) = (
        usize::from(month)
            .checked_sub(1)
            .and_then(|index| MONTH_NAMES.get(index)),
        i16::try_from(year),
        i8::try_from(month),
    ) else {
        return Err(CalendarError::NoSuchMonth { year, month, day });
    };
    let first_of_month = Date::new(calendar_year, calendar_month, 1)
        .map_err(|_| CalendarError::YearOutOfRange { year })?;
    i8::try_from(day)
        .ok()
        .and_then(|calendar_day| Date::new(calendar_year, calendar_month, calendar_day).ok())
        .ok_or_else(|| CalendarError::NoSuchDay {
            year,
            month,
            day,
            month_name,
            days_in_month: first_of_month.days_in_month().unsigned_abs(),
        })
}

/// The civil date and time `offset_ms` ahead of UTC at `time_ms`.
fn civil_at(
    time_ms: TimeMs,
    offset_ms: i64,
    zone: &'static str,
) -> Result<DateTime, CalendarError> {
    let beyond = CalendarError::TimeBeyondCalendar { time_ms, zone };
    if time_ms > TIME_MS_MAX {
        return Err(beyond);
    }
    let local_ms = i64::try_from(time_ms)
        .ok()
        .and_then(|time_ms| time_ms.checked_add(offset_ms))
        .ok_or_else(|| beyond.clone())?;
    EPOCH
        .checked_add(SignedDuration::from_millis(local_ms))
        .map_err(|_| beyond)
}

/// Reads ASCII from left to right. A step that does not match may leave the position
/// anywhere: the first mismatch ends the parse.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Option<u8> {
        let byte = self.bytes.get(self.position).copied()?;
        self.position += 1;
        Some(byte)
    }

    fn take(&mut self, wanted: u8) -> bool {
        self.take_any(&[wanted])
    }

    fn take_any(&mut self, wanted: &[u8]) -> bool {
        match self.bytes.get(self.position) {
            Some(byte) if wanted.contains(byte) => {
                self.position += 1;
                true
            }
            _ => false,
        }
    }

    /// Two ASCII digits as a number, 00 to 99.
    fn two_digits(&mut self) -> Option<u8> {
        match self.bytes.get(self.position..self.position + 2) {
            Some(&[high, low]) if high.is_ascii_digit() && low.is_ascii_digit() => {
                self.position += 2;
                Some((high - b'0') * 10 + (low - b'0'))
            }
            _ => None,
        }
    }

    /// `NN:NN`, as in 08:30 (a time of day's hours and minutes, or an offset's).
    fn two_digit_pair(&mut self) -> Option<(u8, u8)> {
        let first = self.two_digits()?;
        if !self.take(b':') {
            return None;
        }
        Some((first, self.two_digits()?))
    }

    /// The run of ASCII digits from here, possibly empty.
    fn digits(&mut self) -> &'a [u8] {
        let start = self.position;
        while self
            .bytes
            .get(self.position)
            .is_some_and(u8::is_ascii_digit)
        {
            self.position += 1;
        }
        self.bytes.get(start..self.position).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.position == self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The face-field check as `rules::is_calendar_date` wrote it by hand before this module:
    /// the new check must accept exactly what it accepted.
    fn hand_written_is_calendar_date(text: &str) -> bool {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return false;
        }
        let number = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = text.get(range)?;
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10))
        else {
            return false;
        };
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return false,
        };
        year >= 1 && day >= 1 && day <= days_in_month
    }

    #[test]
    fn dates_parse_to_their_utc_midnight() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2000-02-29"), Ok(951_782_400_000));
        assert_eq!(parse_date("2026-01-01"), Ok(crate::testkit::GENESIS_TIME));
        assert_eq!(parse_date("2100-01-01"), Ok(4_102_444_800_000));
        assert_eq!(parse_date("9999-12-31"), Ok(TIME_MS_MAX + 1 - 86_400_000));
    }

    #[test]
    fn impossible_dates_name_the_date_and_the_reason() {
        let message = |text: &str| parse_date(text).unwrap_err().to_string();
        assert_eq!(
            message("2026-02-31"),
            "2026-02-31 is not a day of the calendar: February 2026 has 28 days"
        );
        assert_eq!(
            message("2024-02-30"),
            "2024-02-30 is not a day of the calendar: February 2024 has 29 days"
        );
        assert_eq!(
            message("1900-02-29"),
            "1900-02-29 is not a day of the calendar: February 1900 has 28 days"
        );
        assert_eq!(
            message("2026-04-31"),
            "2026-04-31 is not a day of the calendar: April 2026 has 30 days"
        );
        assert_eq!(
            message("2026-01-00"),
            "2026-01-00 is not a day of the calendar: January 2026 has 31 days"
        );
        assert_eq!(
            message("2026-13-01"),
            "2026-13-01 is not a day of the calendar: a year has months 01 to 12"
        );
        assert_eq!(
            message("0000-01-01"),
            "the year 0 is outside the calendar's years 1 to 9999"
        );
        assert_eq!(
            message("1969-12-31"),
            "\"1969-12-31\" is before 1970-01-01T00:00:00Z, where the ledger's time begins"
        );
        for text in [
            "2026-1-01",
            "2026-01-1",
            "26-01-01",
            "+2026-01-01",
            "2026/01/01",
            "２０２６-01-01",
            "",
        ] {
            assert_eq!(
                parse_date(text),
                Err(CalendarError::DateForm {
                    text: text.to_owned()
                }),
                "{text:?}"
            );
        }
        assert_eq!(
            message("2026-1-01"),
            "\"2026-1-01\" is not a date of the form YYYY-MM-DD (four-digit year, two-digit month and day)"
        );
    }

    #[test]
    fn check_date_follows_the_gregorian_leap_years() {
        assert_eq!(check_date(2000, 2, 29), Ok(()));
        assert_eq!(check_date(2024, 2, 29), Ok(()));
        assert!(check_date(2100, 2, 29).is_err());
        assert!(check_date(2023, 2, 29).is_err());
        assert_eq!(check_date(1, 1, 1), Ok(()));
        assert_eq!(check_date(9999, 12, 31), Ok(()));
        assert_eq!(
            check_date(0, 1, 1),
            Err(CalendarError::YearOutOfRange { year: 0 })
        );
        assert_eq!(
            check_date(10_000, 1, 1),
            Err(CalendarError::YearOutOfRange { year: 10_000 })
        );
        assert_eq!(
            check_date(2026, 0, 1),
            Err(CalendarError::NoSuchMonth {
                year: 2026,
                month: 0,
                day: 1
            })
        );
        assert_eq!(
            check_date(2026, 2, 200),
            Err(CalendarError::NoSuchDay {
                year: 2026,
                month: 2,
                day: 200,
                month_name: "February",
                days_in_month: 28
            })
        );
    }

    #[test]
    fn face_field_dates_are_accepted_exactly_as_before() {
        for year in 1800..=2100 {
            for month in 0..=13 {
                for day in 0..=32 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    assert_eq!(
                        is_calendar_date(&text),
                        hand_written_is_calendar_date(&text),
                        "{text}"
                    );
                }
            }
        }
        for text in [
            "0000-01-01",
            "0001-01-01",
            "9999-12-31",
            "2026-01-01 ",
            " 2026-01-01",
            "2026-01-1a",
            "2026-01+01",
            "2026−01−01",
            "2026-01-0١",
            "+026-01-01",
            "-026-01-01",
            "",
        ] {
            assert_eq!(
                is_calendar_date(text),
                hand_written_is_calendar_date(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn timestamps_parse_with_z_or_an_offset() {
        let genesis = crate::testkit::GENESIS_TIME;
        assert_eq!(parse_timestamp("2026-01-01T00:00:00Z"), Ok(genesis));
        assert_eq!(parse_timestamp("2026-01-01t00:00:00z"), Ok(genesis));
        assert_eq!(parse_timestamp("2026-01-01T08:00:00+08:00"), Ok(genesis));
        assert_eq!(parse_timestamp("2025-12-31T19:30:00-04:30"), Ok(genesis));
        assert_eq!(parse_timestamp("2026-01-01T00:00:00-00:00"), Ok(genesis));
        assert_eq!(
            parse_timestamp("2026-01-01T08:00:01Z"),
            Ok(genesis + 8 * 3_600_000 + 1_000)
        );
        assert_eq!(parse_timestamp("2026-01-01T00:00:00.5Z"), Ok(genesis + 500));
        assert_eq!(parse_timestamp("2026-01-01T00:00:00.05Z"), Ok(genesis + 50));
        assert_eq!(
            parse_timestamp("2026-01-01T00:00:00.123Z"),
            Ok(genesis + 123)
        );
        assert_eq!(parse_timestamp("1970-01-01T08:00:00+08:00"), Ok(0));
        assert_eq!(parse_timestamp("9999-12-31T23:59:59.999Z"), Ok(TIME_MS_MAX));
    }

    #[test]
    fn malformed_timestamps_say_what_is_wrong() {
        let problem = |text: &str| match parse_timestamp(text) {
            Err(CalendarError::TimestampForm { problem, .. }) => problem,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(
            problem("2026-01-01T08:00:01"),
            "no offset: end with Z for UTC, or with ±HH:MM"
        );
        assert_eq!(
            problem("2026-01-01"),
            "the date and the time of day are joined by T"
        );
        assert_eq!(
            problem("2026-01-01 08:00:01Z"),
            "the date and the time of day are joined by T"
        );
        assert_eq!(
            problem("2026-01-01T08:00Z"),
            "the time of day must be HH:MM:SS"
        );
        assert_eq!(
            problem("2026-01-01T8:00:01Z"),
            "the time of day must be HH:MM:SS"
        );
        assert_eq!(
            problem("2026-01-01T08:00:01.Z"),
            "a decimal point must be followed by digits"
        );
        assert_eq!(
            problem("2026-01-01T08:00:01+08"),
            "an offset must be ±HH:MM"
        );
        assert_eq!(
            problem("2026-01-01T08:00:01+0800"),
            "an offset must be ±HH:MM"
        );
        assert_eq!(
            problem("2026-01-01T08:00:01Z[Asia/Shanghai]"),
            "text follows the offset"
        );
        assert_eq!(
            problem("2026-1-01T08:00:01Z"),
            "the date must be YYYY-MM-DD"
        );
        assert_eq!(problem("2026"), "it is too short");
        assert_eq!(
            parse_timestamp("2026-01-01T08:00:01")
                .unwrap_err()
                .to_string(),
            "\"2026-01-01T08:00:01\" is not an RFC 3339 time of the form YYYY-MM-DDTHH:MM:SS, \
             optionally .mmm, then Z or ±HH:MM: no offset: end with Z for UTC, or with ±HH:MM"
        );
    }

    #[test]
    fn impossible_timestamps_are_refused() {
        assert_eq!(
            parse_timestamp("2026-02-31T00:00:00Z")
                .unwrap_err()
                .to_string(),
            "2026-02-31 is not a day of the calendar: February 2026 has 28 days"
        );
        assert_eq!(
            parse_timestamp("2026-01-01T24:00:00Z"),
            Err(CalendarError::NoSuchTime {
                hour: 24,
                minute: 0,
                second: 0
            })
        );
        assert_eq!(
            parse_timestamp("2026-12-31T23:59:60Z"),
            Err(CalendarError::NoSuchTime {
                hour: 23,
                minute: 59,
                second: 60
            })
        );
        assert_eq!(
            parse_timestamp("2026-01-01T00:60:00Z"),
            Err(CalendarError::NoSuchTime {
                hour: 0,
                minute: 60,
                second: 0
            })
        );
        assert_eq!(
            parse_timestamp("2026-01-01T00:00:00+24:00"),
            Err(CalendarError::NoSuchOffset {
                text: "2026-01-01T00:00:00+24:00".into(),
                hours: 24,
                minutes: 0
            })
        );
        assert_eq!(
            parse_timestamp("2026-01-01T00:00:00.1234Z"),
            Err(CalendarError::FractionTooFine {
                text: "2026-01-01T00:00:00.1234Z".into(),
                digits: 4
            })
        );
        assert_eq!(
            parse_timestamp("1970-01-01T07:59:59.999+08:00"),
            Err(CalendarError::BeforeEpoch {
                text: "1970-01-01T07:59:59.999+08:00".into()
            })
        );
        assert_eq!(
            parse_timestamp("9999-12-31T23:00:00-05:00"),
            Err(CalendarError::AfterCalendar {
                text: "9999-12-31T23:00:00-05:00".into()
            })
        );
    }

    #[test]
    fn times_format_in_utc_and_in_china_standard_time() {
        assert_eq!(format_utc(0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_utc(951_782_400_123).unwrap(),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            format_utc(946_684_799_999).unwrap(),
            "1999-12-31T23:59:59.999Z"
        );
        assert_eq!(format_utc(TIME_MS_MAX).unwrap(), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_china(0).unwrap(), "1970-01-01 08:00");
        // 2024-02-29T15:59:59Z: the last minute of a leap day in Beijing.
        assert_eq!(format_china(1_709_222_399_999).unwrap(), "2024-02-29 23:59");
        assert_eq!(format_china(1_709_222_400_000).unwrap(), "2024-03-01 00:00");
        assert_eq!(format_china(CHINA_TIME_MS_MAX).unwrap(), "9999-12-31 23:59");
        assert_eq!(format_china_zh(0).unwrap(), "1970年1月1日 08:00");
        assert_eq!(
            format_china_zh(1_709_222_399_999).unwrap(),
            "2024年2月29日 23:59"
        );
        assert_eq!(
            format_china_zh(CHINA_TIME_MS_MAX).unwrap(),
            "9999年12月31日 23:59"
        );
    }

    #[test]
    fn times_beyond_the_calendar_are_errors_or_their_milliseconds() {
        assert_eq!(
            format_utc(TIME_MS_MAX + 1),
            Err(CalendarError::TimeBeyondCalendar {
                time_ms: TIME_MS_MAX + 1,
                zone: "UTC"
            })
        );
        assert_eq!(
            format_china(CHINA_TIME_MS_MAX + 1),
            Err(CalendarError::TimeBeyondCalendar {
                time_ms: CHINA_TIME_MS_MAX + 1,
                zone: "UTC+8"
            })
        );
        assert!(format_china_zh(CHINA_TIME_MS_MAX + 1).is_err());
        assert_eq!(
            format_utc(u64::MAX).unwrap_err().to_string(),
            "18446744073709551615 ms since the epoch is after 9999-12-31 23:59:59.999 UTC, \
             the calendar's last instant"
        );
        assert_eq!(display_utc(TIME_MS_MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            display_utc(u64::MAX),
            "18446744073709551615 ms since the epoch"
        );
        assert_eq!(display_china(CHINA_TIME_MS_MAX), "9999-12-31 23:59");
        assert_eq!(
            display_china(CHINA_TIME_MS_MAX + 1),
            "253402272000000 ms since the epoch"
        );
    }

    proptest! {
        #[test]
        fn utc_texts_parse_back_to_their_milliseconds(time_ms in 0..=TIME_MS_MAX) {
            let text = format_utc(time_ms).unwrap();
            prop_assert_eq!(parse_timestamp(&text), Ok(time_ms));
            prop_assert_eq!(parse_date(&text[..10]), Ok(time_ms - time_ms % 86_400_000));
        }

        #[test]
        fn china_texts_name_the_same_minute(time_ms in 0..=CHINA_TIME_MS_MAX) {
            let text = format_china(time_ms).unwrap();
            let rfc3339 = format!("{}T{}:00+08:00", &text[..10], &text[11..]);
            prop_assert_eq!(parse_timestamp(&rfc3339), Ok(time_ms - time_ms % 60_000));
        }

        #[test]
        fn any_short_text_is_judged_as_before(
            text in "[0-9]{4}[-+][0-9]{2}[-/][0-9]{2}|[0-9+ -]{8,12}"
        ) {
            prop_assert_eq!(is_calendar_date(&text), hand_written_is_calendar_date(&text));
        }
    }
}
