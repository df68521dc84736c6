//! Virtual keys: who is calling, which workloads they may use, and the
//! budget their calls are charged to.
//!
//! Why a keys file and not the policy: key material (even hashed) does not
//! belong in a document that goes through policy review, and keys rotate
//! far more often than routes; a separate file changes without a policy
//! change and reloads on its own. Keys are stored as `sha256:<hex>` of the
//! key: a leaked keys file does not leak keys, and a plain key pasted by
//! mistake is refused without being echoed anywhere.
//!
//! ```toml
//! # One table per tenant.
//! [tenants.growth]
//! keys = ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
//! workloads = ["content_summary", "gpt-4o-mini"]   # names or aliases; "*" = all
//! budget = { usd_per_day = "25", tokens_per_month = 50_000_000, alert_percent = 80 }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use router_core::{Budget, Policy, Usd};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The prefix of every stored key hash.
const HASH_PREFIX: &str = "sha256:";

/// The stored form of `key`: `sha256:` and 64 lowercase hex digits.
///
/// ```
/// assert_eq!(
///     gateway::hash_key("test"),
///     "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
/// );
/// ```
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
    out.push_str(HASH_PREFIX);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One tenant: its name (the budget scope and the log label), the
/// workloads it may call, and its own budget.
#[derive(Clone, Debug)]
pub struct Tenant {
    name: Arc<str>,
    workloads: Allowed,
    budget: Option<Budget>,
}

#[derive(Clone, Debug)]
enum Allowed {
    All,
    Only(Vec<String>),
}

impl Tenant {
    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared (decision owners keep it without copying).
    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// The tenant's own budget, charged alongside the workload's.
    pub fn budget(&self) -> Option<&Budget> {
        self.budget.as_ref()
    }

    /// Whether the tenant may call the workload `canonical` (its name in
    /// the policy), given the policy to resolve aliases in the allow list.
    pub fn may_call(&self, policy: &Policy, canonical: &str) -> bool {
        match &self.workloads {
            Allowed::All => true,
            Allowed::Only(list) => list
                .iter()
                .any(|w| policy.workload_named(w).is_some_and(|wl| wl.name == canonical)),
        }
    }
}

/// The parsed keys file: key hashes to tenants.
#[derive(Clone, Default)]
pub struct Keys {
    by_hash: HashMap<String, Arc<Tenant>>,
    tenants: Vec<Arc<Tenant>>,
    /// A hash of the file's text: a reload that changes nothing keeps state.
    digest: String,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hashes are not secrets, but nobody needs them in a log line.
        f.debug_struct("Keys")
            .field("tenants", &self.tenants.iter().map(|t| t.name()).collect::<Vec<_>>())
            .field("keys", &self.by_hash.len())
            .finish()
    }
}

impl Keys {
    /// Reads and parses a keys file.
    ///
    /// # Errors
    /// [`KeysError`] when the file cannot be read or is not a valid keys file.
    pub fn load(path: &Path) -> Result<Keys, KeysError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeysError {
            path: path.to_owned(),
            detail: format!("cannot read it: {e}"),
        })?;
        Keys::parse(&text).map_err(|detail| KeysError {
            path: path.to_owned(),
            detail,
        })
    }

    /// Parses the text of a keys file; the error says what is wrong
    /// without quoting any key.
    fn parse(text: &str) -> Result<Keys, String> {
        let file: File = toml::from_str(text).map_err(|e| {
            // toml's message quotes the offending line, which may hold a key:
            // keep only its first line (the position and what was expected).
            let msg = e.message().to_owned();
            match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: {msg}")
                }
                None => msg,
            }
        })?;
        let mut keys = Keys {
            digest: hash_key(text),
            ..Keys::default()
        };
        for (name, t) in file.tenants {
            let workloads = if t.workloads.iter().any(|w| w == "*") {
                Allowed::All
            } else {
                Allowed::Only(t.workloads)
            };
            let budget = t.budget.map(|b| b.into_budget(&name)).transpose()?;
            let tenant = Arc::new(Tenant {
                name: Arc::from(name.as_str()),
                workloads,
                budget,
            });
            if t.keys.is_empty() {
                return Err(format!("tenant `{name}` has no keys"));
            }
            for (i, hash) in t.keys.iter().enumerate() {
                let hash = hash.trim();
                if !is_hash(hash) {
                    return Err(format!(
                        "tenant `{name}`: key {} is not a `sha256:` hash of 64 hex digits \
                         (plain keys are refused; produce one with `routec serve --hash-key`)",
                        i + 1
                    ));
                }
                let hash = hash.to_ascii_lowercase();
                if let Some(other) = keys.by_hash.insert(hash, Arc::clone(&tenant)) {
                    return Err(format!(
                        "tenant `{name}`: key {} is also a key of tenant `{}`",
                        i + 1,
                        other.name
                    ));
                }
            }
            keys.tenants.push(tenant);
        }
        Ok(keys)
    }

    /// The tenant whose key this is, if any.
    pub fn tenant(&self, key: &str) -> Option<&Arc<Tenant>> {
        self.by_hash.get(&hash_key(key))
    }

    /// A hash of the file's text.
    pub(crate) fn digest(&self) -> &str {
        &self.digest
    }

    /// Every tenant, in name order.
    pub fn tenants(&self) -> &[Arc<Tenant>] {
        &self.tenants
    }

    /// Workload names in allow lists that the policy does not know, as
    /// `(tenant, name)`: a typo here silently denies access, so the gateway
    /// logs them.
    pub fn unknown_workloads<'a>(&'a self, policy: &'a Policy) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::new();
        for t in &self.tenants {
            if let Allowed::Only(list) = &t.workloads {
                for w in list {
                    if policy.workload_named(w).is_none() {
                        out.push((t.name(), w.as_str()));
                    }
                }
            }
        }
        out
    }
}

fn is_hash(s: &str) -> bool {
    s.strip_prefix(HASH_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A keys file that cannot be used.
#[derive(Clone, Debug, Error)]
#[error("keys file `{}`: {detail}", path.display())]
pub struct KeysError {
    path: PathBuf,
    detail: String,
}

impl KeysError {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tenants: BTreeMap<String, TenantEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    keys: Vec<String>,
    workloads: Vec<String>,
    #[serde(default)]
    budget: Option<BudgetEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetEntry {
    tokens_per_day: Option<u64>,
    tokens_per_month: Option<u64>,
    usd_per_day: Option<Dollars>,
    usd_per_month: Option<Dollars>,
    alert_percent: Option<u8>,
}

impl BudgetEntry {
    fn into_budget(self, tenant: &str) -> Result<Budget, String> {
        let usd = |d: Option<Dollars>, field: &str| {
            d.map(|d| {
                d.to_usd().ok_or_else(|| {
                    format!("tenant `{tenant}`: `{field}` is not an amount of dollars such as \"25.50\"")
                })
            })
            .transpose()
        };
        let budget = Budget {
            tokens_per_day: self.tokens_per_day,
            tokens_per_month: self.tokens_per_month,
            usd_per_day: usd(self.usd_per_day, "usd_per_day")?,
            usd_per_month: usd(self.usd_per_month, "usd_per_month")?,
            alert_percent: self.alert_percent,
        };
        if let Some(p) = budget.alert_percent
            && !(1..=100).contains(&p)
        {
            return Err(format!("tenant `{tenant}`: `alert_percent` must be 1 to 100"));
        }
        if !budget.is_limited() {
            return Err(format!("tenant `{tenant}`: the budget sets no limit"));
        }
        Ok(budget)
    }
}

/// Dollars as written in the file: a whole number, or a string with up to
/// nine decimals (`"25"`, `"$0.50"`), never a float that rounds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Dollars {
    Whole(u64),
    Text(String),
}

impl Dollars {
    fn to_usd(&self) -> Option<Usd> {
        match self {
            Dollars::Whole(n) => n.checked_mul(1_000_000_000).map(Usd::from_nanos),
            Dollars::Text(s) => parse_dollars(s),
        }
    }
}

fn parse_dollars(s: &str) -> Option<Usd> {
    let s = s.trim();
    let s = s.strip_prefix('$').unwrap_or(s);
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || frac.len() > 9 || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac_nanos: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    whole
        .checked_mul(1_000_000_000)?
        .checked_add(frac_nanos)
        .map(Usd::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(keys: &str) -> String {
        format!(
            r#"
            [tenants.growth]
            keys = [{keys}]
            workloads = ["*"]
            budget = {{ usd_per_day = "2.50", tokens_per_month = 1_000_000, alert_percent = 80 }}

            [tenants.ops]
            keys = ["{}"]
            workloads = ["summary"]
            "#,
            hash_key("ops-key")
        )
    }

    #[test]
    fn keys_resolve_to_tenants_by_hash() {
        let keys = Keys::parse(&file(&format!("\"{}\"", hash_key("growth-key")))).unwrap();
        assert_eq!(keys.tenant("growth-key").unwrap().name(), "growth");
        assert_eq!(keys.tenant("ops-key").unwrap().name(), "ops");
        assert!(keys.tenant("other").is_none());
        let budget = keys.tenant("growth-key").unwrap().budget().copied().unwrap();
        assert_eq!(budget.usd_per_day, Some(Usd::from_nanos(2_500_000_000)));
        assert_eq!(budget.tokens_per_month, Some(1_000_000));
        assert!(keys.tenant("ops-key").unwrap().budget().is_none());
    }

    #[test]
    fn a_plain_key_is_refused_without_being_quoted() {
        let err = Keys::parse(&file("\"sk-CANARY-0123456789\"")).unwrap_err();
        assert!(err.contains("key 1 is not a `sha256:` hash"), "{err}");
        assert!(!err.contains("CANARY"), "{err}");
        // A syntax error on the key's line quotes no part of it either.
        let err = Keys::parse("[tenants.a]\nkeys = [sk-CANARY]\nworkloads = []\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(!err.contains("CANARY"), "{err}");
    }

    #[test]
    fn a_key_shared_by_two_tenants_is_refused() {
        let h = hash_key("k");
        let text = format!(
            "[tenants.a]\nkeys = [\"{h}\"]\nworkloads = [\"*\"]\n[tenants.b]\nkeys = [\"{h}\"]\nworkloads = [\"*\"]\n"
        );
        let err = Keys::parse(&text).unwrap_err();
        assert!(err.contains("also a key of tenant `a`"), "{err}");
    }

    #[test]
    fn dollars_parse_exactly() {
        assert_eq!(parse_dollars("25"), Some(Usd::from_dollars(25)));
        assert_eq!(parse_dollars("$0.000000001"), Some(Usd::from_nanos(1)));
        assert_eq!(parse_dollars("1.5"), Some(Usd::from_nanos(1_500_000_000)));
        for bad in ["", "1.0000000001", "-1", "1e3", "$", ".5"] {
            assert_eq!(parse_dollars(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            hash_key(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_hash(&hash_key("x")));
    }
}
