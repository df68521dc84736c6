//! The provider registry: one adapter per provider block of the policy.
//!
//! Why a registry, and why a missing key is not a crash: a policy names
//! every provider a team *may* use, while a given deployment holds keys for
//! some of them. A provider whose key variable is unset (or whose adapter
//! cannot be configured) is *unavailable*: its targets are left out of
//! every plan, with a note in each explanation and one warning at startup,
//! and the rest of the policy keeps working. Keys are read once, here, and
//! go straight into the adapter; nothing in this module formats one.

use std::collections::HashMap;
use std::sync::Arc;

use providers::{AdapterConfig, AdapterKind, ApiKey, Provider, SimulatedProvider, adapter_for};
use router_core::{Adapter, Policy, ProviderId, SimProfile, TargetId};

/// Reads an environment variable by name (the default is `std::env::var`).
pub(crate) type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Adapters by target, and why some providers have none.
pub(crate) struct Registry {
    by_target: Vec<Option<Arc<dyn Provider>>>,
    labels: Vec<String>,
    unavailable: Vec<Option<String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Adapters are left out on purpose: their configuration holds keys.
        f.debug_struct("Registry")
            .field("targets", &self.labels)
            .field("unavailable", &self.unavailable)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Builds an adapter for every provider of `policy`, except those in
    /// `overrides`, which are used as given (tests, embedders with their own
    /// transport). `seed` seeds the simulated providers.
    pub(crate) fn build(
        policy: &Policy,
        env: &EnvLookup,
        overrides: &HashMap<String, Arc<dyn Provider>>,
        seed: u64,
    ) -> Registry {
        let mut by_target: Vec<Option<Arc<dyn Provider>>> = vec![None; policy.targets.len()];
        let mut unavailable = vec![None; policy.providers.len()];
        for (i, p) in policy.providers.iter().enumerate() {
            if let Some(adapter) = overrides.get(&p.name) {
                for t in &p.targets {
                    by_target[t.0 as usize] = Some(Arc::clone(adapter));
                }
                continue;
            }
            match build_provider(policy, ProviderId(i as u32), env, seed) {
                Ok(adapters) => {
                    for (t, adapter) in adapters {
                        by_target[t.0 as usize] = Some(adapter);
                    }
                }
                Err(why) => {
                    tracing::warn!(
                        provider = %p.name, reason = %why,
                        "provider unavailable: its targets are left out of every plan"
                    );
                    unavailable[i] = Some(why);
                }
            }
        }
        Registry {
            by_target,
            labels: (0..policy.targets.len())
                .map(|i| policy.target_label(TargetId(i as u32)))
                .collect(),
            unavailable,
        }
    }

    /// The adapter serving `target`, if its provider is available.
    pub(crate) fn adapter(&self, target: TargetId) -> Option<&Arc<dyn Provider>> {
        self.by_target.get(target.0 as usize)?.as_ref()
    }

    /// `provider/model`.
    pub(crate) fn label(&self, target: TargetId) -> &str {
        self.labels.get(target.0 as usize).map_or("?", String::as_str)
    }

    /// Why `provider` is unavailable, if it is.
    pub(crate) fn unavailable(&self, provider: ProviderId) -> Option<&str> {
        self.unavailable.get(provider.0 as usize)?.as_deref()
    }

    /// Whether any provider is unavailable.
    pub(crate) fn any_unavailable(&self) -> bool {
        self.unavailable.iter().any(Option::is_some)
    }

    /// One note per unavailable provider, for explanations.
    pub(crate) fn notes(&self, policy: &Policy) -> Vec<String> {
        self.unavailable
            .iter()
            .zip(&policy.providers)
            .filter_map(|(why, p)| {
                why.as_ref()
                    .map(|why| format!("provider `{}` is unavailable: {why}", p.name))
            })
            .collect()
    }
}

/// The adapters of a provider's targets.
type Adapters = Vec<(TargetId, Arc<dyn Provider>)>;

/// The adapter(s) of one provider: one shared by its targets, except that a
/// `mock` model with its own `simulate` profile gets its own simulator.
fn build_provider(policy: &Policy, id: ProviderId, env: &EnvLookup, seed: u64) -> Result<Adapters, String> {
    let p = policy.provider(id);
    let kind = match &p.adapter {
        Adapter::Openai => AdapterKind::OpenAi,
        Adapter::Anthropic => AdapterKind::Anthropic,
        Adapter::Gemini => AdapterKind::Gemini,
        Adapter::OpenaiCompatible { preset } => AdapterKind::OpenAiCompatible { preset: preset.clone() },
        Adapter::Cli { command } => AdapterKind::Cli {
            command: command.clone(),
        },
        Adapter::Mock => {
            let shared: Arc<dyn Provider> = Arc::new(simulator(&p.name, p.simulate, seed));
            return Ok(p
                .targets
                .iter()
                .map(|t| match policy.target(*t).simulate {
                    Some(own) => (*t, Arc::new(simulator(&p.name, Some(own), seed)) as Arc<dyn Provider>),
                    None => (*t, Arc::clone(&shared)),
                })
                .collect());
        }
    };
    let mut config = AdapterConfig::new(p.name.clone());
    if let Some(key) = &p.key {
        match env(&key.env) {
            Some(value) if !value.trim().is_empty() => config.api_key = ApiKey::new(value),
            Some(_) | None => return Err(format!("environment variable `{}` is not set", key.env)),
        }
    }
    config.base_url = p.base_url.clone();
    config.extra_headers = p
        .no_store_header
        .iter()
        .chain(&p.headers)
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    config.no_store = p.no_store_header.is_some();
    config.models = p.targets.iter().map(|t| policy.target(*t).api_id.clone()).collect();
    // The policy's connect timeout, and its first-token and idle timeouts
    // for the transport's own reads (whole answers' first byte, body gaps);
    // a chain's tighter bounds are the runtime's to apply per attempt.
    let timeouts = p.failure.or(policy.defaults.failure).timeouts;
    if let Some(d) = timeouts.connect {
        config.timeouts.connect = d;
    }
    if let Some(d) = timeouts.first_token {
        config.timeouts.first_byte = d;
    }
    if let Some(d) = timeouts.idle {
        config.timeouts.idle = d;
    }
    let adapter = adapter_for(&kind, config).map_err(|e| e.to_string())?;
    Ok(p.targets.iter().map(|t| (*t, Arc::clone(&adapter))).collect())
}

fn simulator(name: &str, profile: Option<SimProfile>, seed: u64) -> SimulatedProvider {
    let mut sim = providers::SimProfile::instant();
    if let Some(p) = profile {
        sim.p50 = p.latency_p50;
        sim.p95 = p.latency_p95;
        sim.error_bp = u32::from(p.error_bp);
        sim.rate_limit_bp = u32::from(p.rate_limit_bp);
        sim.stream_break_bp = u32::from(p.stream_break_bp);
    }
    SimulatedProvider::new(name, sim).with_seed(seed)
}

#[cfg(test)]
mod tests {
    use router_core::{Adapter, Budget, KeyRef};

    use super::*;

    fn env_with(pairs: &[(&str, &str)]) -> EnvLookup {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Arc::new(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn a_missing_key_makes_the_provider_unavailable_not_the_router() {
        let mut policy = crate::testkit::policy(&[("w", Budget::default())]);
        policy.providers[1].adapter = Adapter::Openai;
        policy.providers[1].key = Some(KeyRef {
            env: "P1_API_KEY".into(),
        });
        let reg = Registry::build(&policy, &env_with(&[]), &HashMap::new(), 0);
        assert!(reg.adapter(TargetId(0)).is_some(), "mock providers need no key");
        assert!(reg.adapter(TargetId(2)).is_none());
        assert_eq!(
            reg.unavailable(ProviderId(1)),
            Some("environment variable `P1_API_KEY` is not set")
        );
        assert_eq!(
            reg.notes(&policy),
            ["provider `p1` is unavailable: environment variable `P1_API_KEY` is not set"]
        );
        let reg = Registry::build(&policy, &env_with(&[("P1_API_KEY", "sk-CANARY")]), &HashMap::new(), 0);
        assert!(reg.adapter(TargetId(2)).is_some());
        assert!(!reg.any_unavailable());
        assert!(!format!("{reg:?}").contains("CANARY"));
    }

    #[test]
    fn labels_name_targets_as_policies_do() {
        let policy = crate::testkit::policy(&[("w", Budget::default())]);
        let reg = Registry::build(&policy, &env_with(&[]), &HashMap::new(), 0);
        assert_eq!(reg.label(TargetId(1)), "p0/b");
        assert_eq!(reg.label(TargetId(9)), "?");
    }
}
