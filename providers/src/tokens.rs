//! A fast token estimate for budgeting and routing, before any provider has
//! counted anything.
//!
//! Budgets reserve *estimated* tokens before dispatch and commit the real
//! usage after, so the estimate needs to be cheap (it runs on every request,
//! inside the routing decision's microsecond budget) and close on average, not
//! exact: one pass over the bytes, no allocation, no vocabulary. The error
//! against OpenAI's `o200k_base` tokenizer on `testdata/tokens/` is measured by
//! a test and reported in `docs/providers.md`.

/// Estimates how many tokens a BPE tokenizer of the GPT-4o / Claude / Gemini
/// generation would split `text` into.
///
/// Modelled on how such vocabularies split text: a space joins the word after
/// it, common words (accented and Cyrillic ones too) are one token and long
/// ones a few, digits go in groups of up to three, punctuation merges in
/// runs, newlines and indentation collapse, and CJK costs about three tokens
/// per four characters. It errs high on code and JSON, the safe side for a
/// budget reservation.
pub fn estimate_tokens(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut tokens: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphabetic() || is_two_byte_lead(b) {
            // A word: ASCII letters and two-byte characters (accented Latin,
            // Greek, Cyrillic), which BPE vocabularies merge like letters.
            let mut chars = 0;
            while i < bytes.len() {
                if bytes[i].is_ascii_alphabetic() {
                    i += 1;
                } else if is_two_byte_lead(bytes[i]) {
                    i += 2;
                } else {
                    break;
                }
                chars += 1;
            }
            tokens += word_tokens(chars);
        } else if b.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            tokens += (i - start).div_ceil(3) as u64;
        } else if b == b' ' {
            // A single space is absorbed by the next word; a run of them
            // (indentation) becomes one token of its own.
            let start = i;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            if i - start > 1 {
                tokens += 1;
            }
        } else if b == b'\n' || b == b'\r' || b == b'\t' {
            while i < bytes.len() && matches!(bytes[i], b'\n' | b'\r' | b'\t') {
                i += 1;
            }
            tokens += 1;
        } else if b.is_ascii() {
            // Punctuation and symbols: common runs (`",`, `();`, `":"`) are
            // single tokens, so a run costs a token per three characters.
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_punctuation() {
                i += 1;
            }
            // Control characters are not punctuation; never stall on one.
            if i == start {
                i += 1;
            }
            tokens += (i - start).div_ceil(3) as u64;
        } else {
            // CJK and other three-byte scripts: about three tokens per four
            // characters; emoji and other four-byte characters: two each.
            let mut cost_x4 = 0u64;
            while i < bytes.len() && !bytes[i].is_ascii() && !is_two_byte_lead(bytes[i]) {
                let width = utf8_width(bytes[i]);
                cost_x4 += if width == 4 { 8 } else { 3 };
                i += width;
            }
            tokens += cost_x4.div_ceil(4);
        }
    }
    tokens
}

/// Tokens for a word of `len` characters: one for everyday words, one more
/// for each further chunk of a long word.
fn word_tokens(len: usize) -> u64 {
    if len <= 8 { 1 } else { 1 + (len - 8).div_ceil(5) as u64 }
}

fn is_two_byte_lead(b: u8) -> bool {
    (0xC2..=0xDF).contains(&b)
}

/// Bytes in the UTF-8 sequence starting with `lead` (1 for a stray
/// continuation byte, so the scan always advances).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_zero() {
        assert_eq!(estimate_tokens(""), 0);
    }

    #[test]
    fn short_english() {
        // "Hello, world!" is 4 tokens in o200k_base.
        assert_eq!(estimate_tokens("Hello, world!"), 4);
    }

    #[test]
    fn numbers_group_by_three() {
        assert_eq!(estimate_tokens("1234567"), 3);
    }

    #[test]
    fn cjk_costs_about_three_per_four_characters() {
        assert_eq!(estimate_tokens("你好世界"), 3);
    }

    #[test]
    fn control_characters_and_stray_bytes_terminate() {
        assert!(estimate_tokens("\u{0}\u{1}\u{7f}") > 0);
    }
}
