//! The adapter names the policy language accepts and the ones `providers`
//! can build must agree. `policy-lang` cannot depend on `providers`
//! (lang → core ← runtime → providers), so each keeps its own list; this
//! test fails when they drift, in either direction.
//!
//! The language's list is read from its own diagnostic for an unknown
//! adapter, whose help names every protocol and preset it accepts: that
//! text is built from the very table the language matches on, unlike the
//! docs, which are written by hand. Each name read from it is also checked
//! to be accepted, so a change of wording cannot pass by reading nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use miette::Diagnostic;
use policy_lang::{Code, SourceFile, compile};
use providers::AdapterKind;

fn policy_with_adapter(adapter: &str) -> String {
    format!(
        r#"
provider p {{
  adapter {adapter}
  key env("P_KEY")
  tier paid
  data public
  model m {{ price $1/M in, $1/M out }}
}}

workload w {{
  data public
  route p/m
}}
"#
    )
}

/// The codes `policy-lang` reports for a policy using `adapter`.
fn codes_for(adapter: &str) -> Vec<Code> {
    match compile(&[SourceFile::new("adapter.route", policy_with_adapter(adapter))]) {
        Ok(compiled) => compiled.report().codes(),
        Err(report) => report.codes(),
    }
}

/// Every adapter name the language accepts, read from its unknown-adapter help.
fn language_adapters() -> BTreeSet<String> {
    let Err(report) = compile(&[SourceFile::new("adapter.route", policy_with_adapter("no_such_adapter"))]) else {
        panic!("an unknown adapter compiled");
    };
    let unknown = report
        .errors()
        .iter()
        .find(|e| e.code() == Code::R0103)
        .unwrap_or_else(|| panic!("no unknown-adapter error: {report:?}"));
    let help = unknown
        .help()
        .expect("the unknown-adapter error lists the adapters")
        .to_string();
    // Every `name` quoted in the help that the language takes as an adapter
    // (the help also quotes `base_url`, which is not one: as a value it is
    // read as the next property's keyword, a syntax error).
    let names: BTreeSet<String> = help
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .filter(|w| {
            let codes = codes_for(w);
            !codes.contains(&Code::R0103) && !codes.contains(&Code::R0005)
        })
        .map(str::to_owned)
        .collect();
    for preset in AdapterKind::preset_names() {
        assert!(
            names.contains(preset),
            "the language's adapter list (read from: {help}) lacks `{preset}`"
        );
    }
    names
}

#[test]
fn every_provider_preset_compiles_as_an_adapter() {
    let presets: Vec<&str> = AdapterKind::preset_names().collect();
    assert!(!presets.is_empty());
    for preset in presets {
        let text = policy_with_adapter(preset);
        match compile(&[SourceFile::new("preset.route", text.as_str())]) {
            Ok(compiled) => assert!(
                compiled.report().is_clean(),
                "`adapter {preset}` compiles with warnings: {:?}",
                compiled.report().codes()
            ),
            Err(report) => panic!(
                "`adapter {preset}` is a providers preset the policy language rejects: {:?}",
                report.codes()
            ),
        }
    }
}

#[test]
fn every_adapter_the_language_accepts_can_be_built() {
    let names = language_adapters();
    assert!(
        names.len() > AdapterKind::preset_names().count(),
        "protocols as well as presets: {names:?}"
    );
    for name in &names {
        assert!(
            AdapterKind::from_name(name).is_some(),
            "the policy language accepts `adapter {name}`, which providers cannot build"
        );
    }
}
