//! Timestamps of traffic lines: milliseconds since the Unix epoch (UTC),
//! written as RFC 3339 (`2026-11-01T09:30:00.250Z`) or as a plain integer.
//!
//! Hand-rolled rather than a date crate because only this one shape is
//! needed, and a million lines parse in a few milliseconds this way.

use std::fmt::Write;

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn format_rfc3339(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    let (days, rem) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY));
    let (y, m, d) = civil_from_days(days);
    let (h, rem) = (rem / 3_600_000, rem % 3_600_000);
    let (min, rem) = (rem / 60_000, rem % 60_000);
    let (s, milli) = (rem / 1000, rem % 1000);
    let mut out = String::with_capacity(24);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z");
    out
}

/// Formats epoch milliseconds as `HH:MM` of its UTC day, for chart labels.
pub(crate) fn format_hh_mm(ms: u64) -> String {
    let rem = ms % MS_PER_DAY as u64;
    format!("{:02}:{:02}", rem / 3_600_000, (rem % 3_600_000) / 60_000)
}

/// Parses RFC 3339 with a `Z` or `±HH:MM` offset and optional fraction
/// (milliseconds kept, finer digits dropped). `None` when malformed or
/// before the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-')
        && sep(7, b'-')
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && sep(13, b':')
        && sep(16, b':'))
    {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut milli = 0i64;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                milli = milli * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            milli *= 10;
        }
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(c @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b':') => {
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if *c == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let ms = days * MS_PER_DAY + ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + milli;
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_round_trip() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        // 2026-11-01T00:00:00Z, checked with `date -u -d 2026-11-01 +%s`.
        assert_eq!(parse_rfc3339("2026-11-01T00:00:00Z"), Some(1_793_491_200_000));
        assert_eq!(format_rfc3339(1_793_491_200_250), "2026-11-01T00:00:00.250Z");
        for ms in [0, 951_782_400_123, 1_793_491_200_250, 4_102_444_800_999] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms), "{ms}");
        }
    }

    #[test]
    fn offsets_and_fractions() {
        let base = parse_rfc3339("2026-11-01T09:30:00Z").unwrap();
        assert_eq!(parse_rfc3339("2026-11-01T10:30:00+01:00"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-01T09:30:00.5Z"), Some(base + 500));
        assert_eq!(parse_rfc3339("2026-11-01T09:30:00.123456Z"), Some(base + 123));
        assert_eq!(format_hh_mm(base), "09:30");
    }

    #[test]
    fn malformed_text_is_rejected() {
        for bad in [
            "",
            "2026-11-01",
            "2026-13-01T00:00:00Z",
            "2026-11-01T00:00:00",
            "2026-11-01T00:00:00.Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
