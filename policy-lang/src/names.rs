//! Name helpers: "did you mean" suggestions and the mixed-script test.

use unicode_script::{Script, UnicodeScript};

/// The candidate closest to `word`, if it is close enough to be a likely
/// typo: an edit distance of at most a third of the word (at least 1), or a
/// case-insensitive match. Ties go to the first candidate.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    if word.is_empty() {
        return None;
    }
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let d = if c.eq_ignore_ascii_case(word) {
            0
        } else {
            strsim::damerau_levenshtein(word, c)
        };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// When `typed` and `defined` have the same length and differ only in
/// letters of different scripts (a Latin `c` for a Cyrillic `с`), the
/// differences in words, with code points: the two names look identical, so
/// "did you mean" alone would show the reader what they typed.
pub(crate) fn look_alike(typed: &str, defined: &str) -> Option<String> {
    let (t, d): (Vec<char>, Vec<char>) = (typed.chars().collect(), defined.chars().collect());
    if t.len() != d.len() {
        return None;
    }
    let diffs: Vec<(char, char)> = t.into_iter().zip(d).filter(|(a, b)| a != b).collect();
    if diffs.is_empty() || !diffs.iter().all(|(a, b)| a.script() != b.script()) {
        return None;
    }
    let shown: Vec<String> = diffs
        .iter()
        .take(3)
        .map(|(typed, defined)| {
            format!(
                "`{defined}` (U+{:04X}, {}) where this has `{typed}` (U+{:04X}, {})",
                u32::from(*defined),
                defined.script().full_name(),
                u32::from(*typed),
                typed.script().full_name()
            )
        })
        .collect();
    let more = if diffs.len() > 3 { ", …" } else { "" };
    Some(format!("`{defined}` is written with {}{more}", shown.join(", ")))
}

/// Help for a reference that is a look-alike of a defined name.
pub(crate) const LOOK_ALIKE_HELP: &str =
    "the two names look the same but are different characters: retype one of them so both use the same letters";

/// The scripts of a name's letters, when there is more than one (digits,
/// `_` and `-` belong to no script and never count).
pub(crate) fn mixed_scripts(name: &str) -> Option<Vec<Script>> {
    let mut scripts: Vec<Script> = Vec::new();
    for c in name.chars() {
        let s = c.script();
        if matches!(s, Script::Common | Script::Inherited | Script::Unknown) {
            continue;
        }
        if !scripts.contains(&s) {
            scripts.push(s);
        }
    }
    (scripts.len() > 1).then_some(scripts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["summary_pool", "challenger", "audit_chain"];
        assert_eq!(did_you_mean("sumary_pool", names), Some("summary_pool".to_string()));
        assert_eq!(did_you_mean("challenjer", names), Some("challenger".to_string()));
        assert_eq!(did_you_mean("zzz", names), None);
    }

    #[test]
    fn look_alikes_name_the_character_and_its_code_point() {
        assert_eq!(
            look_alike("cerebras", "\u{441}erebras").as_deref(),
            Some("`\u{441}erebras` is written with `\u{441}` (U+0441, Cyrillic) where this has `c` (U+0063, Latin)")
        );
        assert_eq!(look_alike("cerebra", "cerebras"), None);
        assert_eq!(look_alike("cerebrus", "cerebras"), None);
    }

    #[test]
    fn a_cyrillic_letter_in_a_latin_name_is_mixed() {
        assert!(mixed_scripts("summary_pool").is_none());
        assert!(mixed_scripts("сводка").is_none());
        assert_eq!(mixed_scripts("summаry"), Some(vec![Script::Latin, Script::Cyrillic]));
        assert!(mixed_scripts("gpt-4o_2").is_none());
    }
}
