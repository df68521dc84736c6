//! Literal values as written in policies: counts with `k`/`M`/`B` suffixes,
//! dollar amounts, percentages, durations and strings with escapes. All
//! integer arithmetic, so `$0.27` is exactly 270,000,000 nano-dollars.
//!
//! Each function returns the problem in words on failure; the parser turns
//! it into a `R0009` (or `R0007` for escapes) diagnostic with the span.

use std::time::Duration;

/// Splits `12_345.5` into integer digits and fraction digits, `_` removed.
fn split_decimal(text: &str) -> (String, String) {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    match clean.split_once('.') {
        Some((i, f)) => (i.to_string(), f.to_string()),
        None => (clean, String::new()),
    }
}

/// `digits.fraction × 10^scale` as an exact integer, or `None` when it is not
/// whole or does not fit.
fn scaled(int: &str, frac: &str, scale: u32) -> Option<u128> {
    let frac_len = u32::try_from(frac.len()).ok()?;
    if frac_len > scale {
        // Only whole results: the extra digits must all be zero.
        let (keep, extra) = frac.split_at(scale as usize);
        if extra.bytes().any(|b| b != b'0') {
            return None;
        }
        return scaled(int, keep, scale);
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_value: u128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let pow = 10u128.checked_pow(scale)?;
    let frac_pow = 10u128.checked_pow(scale - frac_len)?;
    int.checked_mul(pow)?.checked_add(frac_value.checked_mul(frac_pow)?)
}

/// A count: `2000`, `128_000`, `200k`, `1.5M`, `2B`.
pub(crate) fn count(text: &str) -> Result<u64, String> {
    let (body, scale) = match text.as_bytes().last() {
        Some(b'k') => (&text[..text.len() - 1], 3),
        Some(b'M') => (&text[..text.len() - 1], 6),
        Some(b'B') => (&text[..text.len() - 1], 9),
        _ => (text, 0),
    };
    let (int, frac) = split_decimal(body);
    let value = scaled(&int, &frac, scale).ok_or_else(|| {
        if frac.is_empty() {
            format!("`{text}` is too large")
        } else {
            format!("`{text}` is not a whole number")
        }
    })?;
    u64::try_from(value).map_err(|_| format!("`{text}` is too large"))
}

/// A dollar amount, `$0.27`, as nano-dollars; at most nine decimals.
pub(crate) fn money(text: &str) -> Result<u64, String> {
    let body = text.strip_prefix('$').unwrap_or(text);
    let (int, frac) = split_decimal(body);
    if frac.len() > 9 && frac[9..].bytes().any(|b| b != b'0') {
        return Err(format!("`{text}` has more than nine decimals"));
    }
    let value = scaled(&int, &frac, 9).ok_or_else(|| format!("`{text}` is too large"))?;
    u64::try_from(value).map_err(|_| format!("`{text}` is too large"))
}

/// A percentage, `80%` or `0.5%`, in basis points (hundredths of a percent).
pub(crate) fn percent(text: &str) -> Result<u32, String> {
    let body = text.strip_suffix('%').unwrap_or(text);
    let (int, frac) = split_decimal(body);
    let value = scaled(&int, &frac, 2).ok_or_else(|| format!("`{text}` has more than two decimals"))?;
    if value > 10_000 {
        return Err(format!("`{text}` is more than 100%"));
    }
    u32::try_from(value).map_err(|_| format!("`{text}` is too large"))
}

/// The longest duration accepted: thirty days.
const MAX_DURATION_MS: u128 = 30 * 24 * 3600 * 1000;

/// A duration: `250ms`, `1.5s`, `5m`, `1h`; more than zero, at most 30 days,
/// whole milliseconds.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let (body, ms_per_unit) = if let Some(b) = text.strip_suffix("ms") {
        (b, 1u128)
    } else if let Some(b) = text.strip_suffix('s') {
        (b, 1_000)
    } else if let Some(b) = text.strip_suffix('m') {
        (b, 60_000)
    } else if let Some(b) = text.strip_suffix('h') {
        (b, 3_600_000)
    } else {
        return Err(format!("`{text}` has no unit (`ms`, `s`, `m` or `h`)"));
    };
    let (int, frac) = split_decimal(body);
    // Millionths of the unit, then to milliseconds.
    let micro_units = scaled(&int, &frac, 6).ok_or_else(|| format!("`{text}` is too long or too precise"))?;
    let micro_ms = micro_units
        .checked_mul(ms_per_unit)
        .ok_or_else(|| format!("`{text}` is too long"))?;
    if micro_ms % 1_000_000 != 0 {
        return Err(format!("`{text}` is not a whole number of milliseconds"));
    }
    let ms = micro_ms / 1_000_000;
    if ms == 0 {
        return Err(format!("`{text}` is zero; a duration must be longer"));
    }
    if ms > MAX_DURATION_MS {
        return Err(format!("`{text}` is longer than 30 days"));
    }
    Ok(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
}

/// A string's contents between the quotes, escapes resolved. On an unknown
/// or malformed escape, its byte offset in `raw` and the escape as written.
pub(crate) fn unescape(raw: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err((i, "\\".to_string()));
        };
        match e {
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let rest = &raw[i + 2..];
                let close = rest.find('}');
                let ok = rest.starts_with('{')
                    && close.is_some_and(|end| {
                        let hex = &rest[1..end];
                        (1..=6).contains(&hex.len())
                            && u32::from_str_radix(hex, 16).ok().and_then(char::from_u32).is_some()
                    });
                match (ok, close) {
                    (true, Some(end)) => {
                        let hex = &rest[1..end];
                        if let Some(ch) = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                            out.push(ch);
                        }
                        // Skip `{…}`.
                        for _ in 0..=end {
                            chars.next();
                        }
                    }
                    _ => {
                        let shown: String = raw[i..].chars().take_while(|c| !c.is_whitespace()).take(12).collect();
                        return Err((i, shown));
                    }
                }
            }
            other => return Err((i, format!("\\{other}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_suffixes_and_underscores() {
        assert_eq!(count("2000"), Ok(2000));
        assert_eq!(count("128_000"), Ok(128_000));
        assert_eq!(count("200k"), Ok(200_000));
        assert_eq!(count("1.5M"), Ok(1_500_000));
        assert_eq!(count("2B"), Ok(2_000_000_000));
        assert!(count("1.5").is_err());
        assert!(count("0.0001k").is_err());
        assert!(count("99999999999999999999999").is_err());
        assert!(count("20000000000B").is_err());
    }

    #[test]
    fn money_is_exact_nano_dollars() {
        assert_eq!(money("$15"), Ok(15_000_000_000));
        assert_eq!(money("$0.27"), Ok(270_000_000));
        assert_eq!(money("$0.000125"), Ok(125_000));
        assert!(money("$0.0000000001").is_err());
        assert_eq!(money("$0.1000000000"), Ok(100_000_000));
    }

    #[test]
    fn percents_are_basis_points_up_to_100() {
        assert_eq!(percent("80%"), Ok(8000));
        assert_eq!(percent("0.5%"), Ok(50));
        assert!(percent("101%").is_err());
        assert!(percent("0.125%").is_err());
    }

    #[test]
    fn durations_are_positive_whole_milliseconds() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(duration("0s").is_err());
        assert!(duration("0.5ms").is_err());
        assert!(duration("9999h").is_err());
    }

    #[test]
    fn escapes_resolve_or_point_at_the_bad_one() {
        assert_eq!(unescape(r#"a\"b\\c\n\u{1F600}"#), Ok("a\"b\\c\n😀".to_string()));
        assert_eq!(unescape(r"ok \q"), Err((3, r"\q".to_string())));
        assert_eq!(unescape(r"\u{110000}"), Err((0, r"\u{110000}".to_string())));
        assert_eq!(unescape(r"\u12"), Err((0, r"\u12".to_string())));
    }
}
