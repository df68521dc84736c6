//! The API key type. Keys leak through `Debug` derives, error messages that echo
//! a request, and log lines; making the value unreachable except where a header
//! is built closes all three doors at once.

use std::borrow::Cow;
use std::fmt;

/// An API key whose `Debug` and `Display` print `***`.
///
/// The raw value is only readable inside this crate, where a request header is
/// built, and every error message an adapter builds is passed through
/// [`ApiKey::redact`] first.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key read from the environment or a secret store.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// An empty key, for local servers (vLLM, Ollama, the CLI) that need none.
    pub fn none() -> Self {
        Self(String::new())
    }

    /// Whether a key was given at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The raw value, for building the auth header and nothing else.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the key in `text` with `***`.
    ///
    /// Upstream error bodies sometimes quote the key they rejected ("Incorrect
    /// API key provided: sk-abc…"), so anything we did not write ourselves goes
    /// through here before it reaches an error.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        // A very short key would redact ordinary words; real keys are long, and
        // a test-sized key of a few characters is still worth hiding.
        if self.0.is_empty() || !text.contains(self.0.as_str()) {
            return Cow::Borrowed(text);
        }
        Cow::Owned(text.replace(self.0.as_str(), "***"))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let key = ApiKey::new("sk-CANARY-1234");
        assert_eq!(format!("{key}"), "***");
        assert!(!format!("{key:?}").contains("CANARY"));
        assert!(!format!("{:#?}", Some(key)).contains("CANARY"));
    }

    #[test]
    fn redact_replaces_every_occurrence() {
        let key = ApiKey::new("sk-CANARY-1234");
        let text = "Incorrect API key provided: sk-CANARY-1234. Authorization: Bearer sk-CANARY-1234";
        let out = key.redact(text);
        assert!(!out.contains("CANARY"));
        assert_eq!(out.matches("***").count(), 2);
    }

    #[test]
    fn empty_key_redacts_nothing() {
        assert_eq!(ApiKey::none().redact("abc"), "abc");
    }
}
