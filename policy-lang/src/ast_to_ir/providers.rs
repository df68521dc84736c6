//! Provider and model blocks: properties, adapters, the training and
//! storage rules (`R0211`, `R0212`), and the targets they offer.

use super::*;

impl Lowerer<'_> {
    pub(super) fn provider(&mut self, p: &ProviderDecl) {
        let id = ProviderId(u32::try_from(self.providers.len()).unwrap_or(u32::MAX));
        let mut seen = HashMap::new();
        let mut adapter_name: Option<&Ident> = None;
        let mut base_url = None;
        let mut command: Option<Vec<String>> = None;
        let mut key = None;
        let mut tier = None;
        let mut jurisdiction = None;
        let mut data: Option<&Lit<DataClass>> = None;
        let mut trains: Option<&Lit<bool>> = None;
        let mut stores: Option<&Lit<bool>> = None;
        let mut no_store: Option<Header> = None;
        let mut headers = Vec::new();
        let mut limits = Limits::default();
        let mut timeout = None;
        let mut failure = router_core::FailureSettings::default();
        let mut simulate = None;
        let mut models: Vec<&ModelDecl> = Vec::new();
        for prop in &p.props {
            let kw = prop.kind.keyword();
            let repeatable = matches!(prop.kind, ProviderProp::Header(_) | ProviderProp::Model(_));
            if !repeatable && self.once(&mut seen, kw, prop.key) {
                continue;
            }
            match &prop.kind {
                ProviderProp::Adapter(a) => adapter_name = Some(a),
                ProviderProp::BaseUrl(s) => base_url = Some(s.value.clone()),
                ProviderProp::Command(args) => command = Some(args.iter().map(|a| a.value.clone()).collect()),
                ProviderProp::Key(KeySpec::Env(s)) => {
                    if !is_env_name(&s.value) {
                        self.out_of_range(
                            s.span,
                            &s.text,
                            format!("{} is not an environment variable name", s.text),
                            "write the variable's name, letters, digits and `_`, like `env(\"OPENAI_API_KEY\")`",
                        );
                    }
                    key = Some(KeyRef { env: s.value.clone() });
                }
                ProviderProp::Key(KeySpec::Literal(s)) => {
                    // The secret scan reports strings that look like keys;
                    // any string here is a key, whatever it looks like.
                    if !looks_like_secret(&s.value) {
                        self.secret(s.span, "a key written as a string");
                    }
                }
                ProviderProp::Tier(t) => tier = Some(t.value),
                ProviderProp::Jurisdiction(j) => jurisdiction = Some(j.name.clone()),
                ProviderProp::Data(d) => data = Some(d),
                ProviderProp::TrainsOnInputs(b) => trains = Some(b),
                ProviderProp::StoresInputs(b) => stores = Some(b),
                ProviderProp::NoStore(h) => {
                    no_store = Some(Header {
                        name: h.name.value.clone(),
                        value: h.value.value.clone(),
                    })
                }
                ProviderProp::Header(h) => headers.push(Header {
                    name: h.name.value.clone(),
                    value: h.value.value.clone(),
                }),
                ProviderProp::Limits(list) => {
                    let mut seen_limit = HashMap::new();
                    for (kind, n) in list {
                        if self.once(&mut seen_limit, kind.value.as_str(), kind.span) {
                            continue;
                        }
                        match kind.value {
                            LimitKind::Rpm => limits.rpm = Some(n.value),
                            LimitKind::Tpm => limits.tpm = Some(n.value),
                            LimitKind::Concurrency => limits.concurrency = Some(n.value),
                        }
                    }
                }
                ProviderProp::Timeout(d) => timeout = Some(d.value),
                ProviderProp::Simulate(items) => simulate = self.simulate(items, prop.key),
                ProviderProp::Model(m) => models.push(m),
                ProviderProp::Failure(f) => self.failure_prop(f, &mut failure, &mut timeout),
            }
        }

        let block = format!("provider {}", q(&p.name.name));
        let adapter = match adapter_name {
            None => {
                self.missing(
                    "adapter",
                    block.clone(),
                    p.name.span,
                    "say which protocol it speaks, e.g. `adapter anthropic`, or an OpenAI-compatible preset like `adapter groq`".to_string(),
                );
                Adapter::Mock
            }
            Some(a) => self.adapter(a, command.clone()),
        };
        match &adapter {
            Adapter::Cli { .. } if command.is_none() => self.missing(
                "command",
                block.clone(),
                p.name.span,
                "a `cli` provider runs a program: write `command \"prog\" \"arg\" …`".to_string(),
            ),
            Adapter::OpenaiCompatible { preset: None } if base_url.is_none() => self.missing(
                "base_url",
                block.clone(),
                p.name.span,
                "an `openai_compatible` provider needs its address: `base_url \"https://…/v1\"`".to_string(),
            ),
            _ => {}
        }
        let tier = tier.unwrap_or_else(|| {
            self.missing(
                "tier",
                block.clone(),
                p.name.span,
                "say how it is paid for: `tier free`, `tier subscription` or `tier paid`".to_string(),
            );
            Tier::Paid
        });
        let max_data = data.map_or(DataClass::Public, |d| d.value);
        let trains_on_inputs = trains.is_some_and(|b| b.value);
        let stores_inputs = stores.is_some_and(|b| b.value);
        if trains_on_inputs && max_data > DataClass::Public {
            let data_span = data.map_or(p.name.span, |d| d.span);
            let mut diag = Diag::at(
                Code::R0211,
                format!(
                    "provider {} trains on inputs but is cleared for {max_data} data",
                    q(&p.name.name)
                ),
                self.src,
                data_span,
                format!("cleared for {max_data} data"),
            )
            .help("a provider that trains on inputs may only receive public data: write `data public`");
            if let Some(t) = trains {
                diag = diag.label(t.span, "trains on what it receives");
            }
            self.report.error(TrainsOnInputsError {
                provider: p.name.name.clone(),
                diag,
            });
        }
        if stores_inputs && max_data > DataClass::Public && no_store.is_none() {
            let data_span = data.map_or(p.name.span, |d| d.span);
            let mut diag = Diag::at(
                Code::R0212,
                format!(
                    "provider {} stores inputs but is cleared for {max_data} data without a no-store header",
                    q(&p.name.name)
                ),
                self.src,
                data_span,
                format!("cleared for {max_data} data"),
            )
            .help("send a header that tells it not to keep inputs (`no_store header \"NAME\" = \"VALUE\"`), or write `data public`");
            if let Some(s) = stores {
                diag = diag.label(s.span, "keeps what it receives");
            }
            self.report.error(StoresInputsError {
                provider: p.name.name.clone(),
                diag,
            });
        }

        let mut target_ids = Vec::new();
        let mut seen_models: HashMap<(&'static str, String), Span> = HashMap::new();
        for m in models {
            if self.duplicate(&mut seen_models, "model", &m.name) {
                continue;
            }
            let tid = TargetId(u32::try_from(self.targets.len()).unwrap_or(u32::MAX));
            let target = self.model(id, m);
            self.embeddings_endpoint(&adapter, &p.name.name, &target, m);
            self.targets.push(target);
            self.target_spans.push(m.name.span);
            target_ids.push(tid);
        }

        self.provider_ids.insert(p.name.name.clone(), id);
        self.provider_info.push(ProviderInfo {
            name: p.name.span,
            data: data.map(|d| d.span),
        });
        self.providers.push(Provider {
            name: p.name.name.clone(),
            adapter,
            base_url,
            key,
            tier,
            jurisdiction,
            max_data,
            trains_on_inputs,
            stores_inputs,
            no_store_header: no_store,
            headers,
            limits,
            timeout,
            failure,
            simulate,
            targets: target_ids,
            origin: self.src.origin(p.span),
        });
    }

    pub(super) fn adapter(&mut self, a: &Ident, command: Option<Vec<String>>) -> Adapter {
        match a.name.as_str() {
            "openai" => Adapter::Openai,
            "anthropic" => Adapter::Anthropic,
            "gemini" => Adapter::Gemini,
            "openai_compatible" => Adapter::OpenaiCompatible { preset: None },
            "cli" => Adapter::Cli {
                command: command.unwrap_or_default(),
            },
            "mock" => Adapter::Mock,
            preset if PRESETS.contains(&preset) => Adapter::OpenaiCompatible {
                preset: Some(preset.to_string()),
            },
            other => {
                let suggestion = names::did_you_mean(other, PROTOCOLS.iter().chain(PRESETS).copied());
                let diag = Diag::at(
                    Code::R0103,
                    format!("unknown adapter {}", q(other)),
                    self.src,
                    a.span,
                    match &suggestion {
                        Some(s) => format!("did you mean {}?", q(s)),
                        None => "not an adapter".to_string(),
                    },
                )
                .help(format!(
                    "adapters are {}; OpenAI-compatible presets are {}; for any other OpenAI-compatible service write `adapter openai_compatible` and a `base_url`",
                    PROTOCOLS.iter().map(|p| q(p)).collect::<Vec<_>>().join(", "),
                    PRESETS.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ")
                ));
                self.report.error(UnknownAdapterError {
                    adapter: other.to_string(),
                    suggestion,
                    diag,
                });
                Adapter::Mock
            }
        }
    }

    pub(super) fn simulate(&mut self, items: &[SimItem], key: Span) -> Option<SimProfile> {
        let mut seen = HashMap::new();
        let mut latency = None;
        let mut error_bp = 0u16;
        let mut rate_limit_bp = 0u16;
        let mut stream_break_bp = 0u16;
        for item in items {
            match item {
                SimItem::Latency { p50, p95 } => {
                    if self.once(&mut seen, "latency", p50.span) {
                        continue;
                    }
                    let p95 = p95.as_ref().map_or(p50.value.saturating_mul(2), |p| p.value);
                    latency = Some((p50.value, p95));
                }
                SimItem::Errors(p) => {
                    if !self.once(&mut seen, "errors", p.span) {
                        error_bp = u16::try_from(p.value).unwrap_or(10_000);
                    }
                }
                SimItem::RateLimits(p) => {
                    if !self.once(&mut seen, "rate_limits", p.span) {
                        rate_limit_bp = u16::try_from(p.value).unwrap_or(10_000);
                    }
                }
                SimItem::StreamBreaks(p) => {
                    if !self.once(&mut seen, "stream_breaks", p.span) {
                        stream_break_bp = u16::try_from(p.value).unwrap_or(10_000);
                    }
                }
            }
        }
        let Some((latency_p50, latency_p95)) = latency else {
            self.missing(
                "latency",
                "`simulate`".to_string(),
                key,
                "say how long a simulated call takes: `simulate latency 400ms p95 900ms`".to_string(),
            );
            return None;
        };
        Some(SimProfile {
            latency_p50,
            latency_p95,
            error_bp,
            rate_limit_bp,
            stream_break_bp,
        })
    }

    /// `supports embeddings` only where the adapter's wire format has an
    /// embeddings endpoint: OpenAI and its compatibles, Gemini, the mock.
    fn embeddings_endpoint(&mut self, adapter: &Adapter, provider: &str, target: &Target, m: &ModelDecl) {
        let name = match adapter {
            Adapter::Anthropic => "anthropic",
            Adapter::Cli { .. } => "cli",
            Adapter::Openai | Adapter::Gemini | Adapter::OpenaiCompatible { .. } | Adapter::Mock => return,
        };
        if !target.capabilities.has(router_core::Capability::Embeddings) {
            return;
        }
        let span = m
            .props
            .iter()
            .find_map(|p| match &p.kind {
                ModelProp::Supports(caps) => caps
                    .iter()
                    .find(|c| c.value == router_core::Capability::Embeddings)
                    .map(|c| c.span),
                _ => None,
            })
            .unwrap_or(m.name.span);
        let model = format!("{provider}/{}", m.name.name);
        let diag = Diag::at(
            Code::R0108,
            format!(
                "model {} supports embeddings, but adapter {} has no embeddings endpoint",
                q(&model),
                q(name)
            ),
            self.src,
            span,
            "no embeddings endpoint on this adapter",
        )
        .help(
            "embedding calls go to OpenAI's and OpenAI-compatible `/embeddings`, Gemini's `batchEmbedContents` or \
             the `mock` adapter; declare the embedding model under such a provider",
        );
        self.report.error(NoEmbeddingsEndpointError {
            model,
            adapter: name.to_owned(),
            diag,
        });
    }

    pub(super) fn model(&mut self, provider: ProviderId, m: &ModelDecl) -> Target {
        let mut seen = HashMap::new();
        let mut target = Target {
            provider,
            model: m.name.name.clone(),
            api_id: m.name.name.clone(),
            version: None,
            price: None,
            context_window: None,
            max_output: None,
            capabilities: Capabilities::NONE,
            simulate: None,
            origin: self.src.origin(m.span),
        };
        for prop in &m.props {
            if self.once(&mut seen, prop.kind.keyword(), prop.key) {
                continue;
            }
            match &prop.kind {
                ModelProp::Id(s) => target.api_id = s.value.clone(),
                ModelProp::Version(s) => target.version = Some(s.value.clone()),
                ModelProp::Price(PriceAst::Free) => target.price = Some(Price::FREE),
                ModelProp::Price(PriceAst::PerMillion { input, output }) => {
                    target.price = Some(Price {
                        input_per_mtok: Usd::from_nanos(input.value),
                        output_per_mtok: Usd::from_nanos(output.value),
                    })
                }
                ModelProp::Context(n) => target.context_window = Some(n.value),
                ModelProp::MaxOutput(n) => target.max_output = Some(n.value),
                ModelProp::Supports(caps) => target.capabilities = caps.iter().map(|c| c.value).collect(),
                ModelProp::Simulate(items) => target.simulate = self.simulate(items, prop.key),
            }
        }
        target
    }
}
