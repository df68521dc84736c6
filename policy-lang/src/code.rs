//! Every diagnostic code, in one place (as oxc keeps them). Codes are stable:
//! a code is never reused for a different problem. `docs/diagnostics.md`
//! documents each one, and a test fails when it does not.

use std::fmt;

/// The stable code of a diagnostic: `R00xx` input and syntax, `R01xx` names
/// and properties, `R02xx` soundness, `W03xx` warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Code {
    /// A path that cannot be read.
    R0001,
    /// A file that is not valid UTF-8.
    R0002,
    /// A file over the size limit.
    R0003,
    /// A directory with no `.route` files.
    R0004,
    /// A syntax error.
    R0005,
    /// A block, list, parenthesis or string left open.
    R0006,
    /// An unknown escape in a string.
    R0007,
    /// Brackets nested too deep.
    R0008,
    /// A number, money amount, percentage or duration out of range or malformed.
    R0009,
    /// A closing bracket with nothing open, or the wrong one.
    R0010,
    /// A name that is not defined.
    R0101,
    /// A name defined twice.
    R0102,
    /// An unknown adapter or preset.
    R0103,
    /// An unknown task.
    R0104,
    /// A property given twice.
    R0105,
    /// A required property missing.
    R0106,
    /// A `regex` check whose pattern does not compile.
    R0107,
    /// A model that `supports embeddings` on an adapter with no embeddings endpoint.
    R0108,
    /// A route cycle.
    R0201,
    /// A workload can reach a provider below its data class.
    R0202,
    /// A workload with no eligible target.
    R0203,
    /// Split weights that do not sum to 100.
    R0204,
    /// A `match` without `else`.
    R0205,
    /// A `match` arm that can never be taken.
    R0206,
    /// A workload needs a capability a reachable model lacks.
    R0207,
    /// `max_tokens` above a reachable model's output or context limit.
    R0208,
    /// A dollar budget or cost ceiling over a paid model with no price.
    R0209,
    /// A secret written in the policy.
    R0210,
    /// A provider that trains on inputs cleared for more than public data.
    R0211,
    /// A provider that stores inputs cleared above public without a no-store header.
    R0212,
    /// Workloads whose answers are judged, through `evaluator` checks, by themselves.
    R0213,
    /// A workload whose route goes deeper, through named routes, than the router follows.
    R0214,
    /// A workload whose route has more steps than the router walks per call.
    R0215,
    /// A workload can reach a provider outside its `jurisdiction` list.
    R0220,
    /// A provider no workload uses.
    W0301,
    /// A named route no workload uses.
    W0302,
    /// A model no workload uses.
    W0303,
    /// Two consecutive attempts on the same provider.
    W0304,
    /// A target that is never tried.
    W0305,
    /// A name mixing scripts.
    W0306,
    /// A policy with no workloads.
    W0307,
    /// A `free_first` none of whose candidates is free.
    W0308,
    /// A budget line smaller than the reservation of one call.
    W0309,
    /// `stream_recovery continue` with no target that accepts a prefill.
    W0310,
    /// A worst case per call above the workload's `max_cost`.
    W0311,
    /// A dollar budget line smaller than one worst-case call.
    W0312,
    /// A workload that reaches both chat and embedding models.
    W0313,
}

impl Code {
    /// Every code, in order.
    pub const ALL: [Code; 47] = [
        Code::R0001,
        Code::R0002,
        Code::R0003,
        Code::R0004,
        Code::R0005,
        Code::R0006,
        Code::R0007,
        Code::R0008,
        Code::R0009,
        Code::R0010,
        Code::R0101,
        Code::R0102,
        Code::R0103,
        Code::R0104,
        Code::R0105,
        Code::R0106,
        Code::R0107,
        Code::R0108,
        Code::R0201,
        Code::R0202,
        Code::R0203,
        Code::R0204,
        Code::R0205,
        Code::R0206,
        Code::R0207,
        Code::R0208,
        Code::R0209,
        Code::R0210,
        Code::R0211,
        Code::R0212,
        Code::R0213,
        Code::R0214,
        Code::R0215,
        Code::R0220,
        Code::W0301,
        Code::W0302,
        Code::W0303,
        Code::W0304,
        Code::W0305,
        Code::W0306,
        Code::W0307,
        Code::W0308,
        Code::W0309,
        Code::W0310,
        Code::W0311,
        Code::W0312,
        Code::W0313,
    ];

    /// The code as written in diagnostics and docs: `R0202`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::R0001 => "R0001",
            Code::R0002 => "R0002",
            Code::R0003 => "R0003",
            Code::R0004 => "R0004",
            Code::R0005 => "R0005",
            Code::R0006 => "R0006",
            Code::R0007 => "R0007",
            Code::R0008 => "R0008",
            Code::R0009 => "R0009",
            Code::R0010 => "R0010",
            Code::R0101 => "R0101",
            Code::R0102 => "R0102",
            Code::R0103 => "R0103",
            Code::R0104 => "R0104",
            Code::R0105 => "R0105",
            Code::R0106 => "R0106",
            Code::R0107 => "R0107",
            Code::R0108 => "R0108",
            Code::R0201 => "R0201",
            Code::R0202 => "R0202",
            Code::R0203 => "R0203",
            Code::R0204 => "R0204",
            Code::R0205 => "R0205",
            Code::R0206 => "R0206",
            Code::R0207 => "R0207",
            Code::R0208 => "R0208",
            Code::R0209 => "R0209",
            Code::R0210 => "R0210",
            Code::R0211 => "R0211",
            Code::R0212 => "R0212",
            Code::R0213 => "R0213",
            Code::R0214 => "R0214",
            Code::R0215 => "R0215",
            Code::R0220 => "R0220",
            Code::W0301 => "W0301",
            Code::W0302 => "W0302",
            Code::W0303 => "W0303",
            Code::W0304 => "W0304",
            Code::W0305 => "W0305",
            Code::W0306 => "W0306",
            Code::W0307 => "W0307",
            Code::W0308 => "W0308",
            Code::W0309 => "W0309",
            Code::W0310 => "W0310",
            Code::W0311 => "W0311",
            Code::W0312 => "W0312",
            Code::W0313 => "W0313",
        }
    }

    /// A short title, as used in CI annotations and the docs' headings.
    pub const fn title(self) -> &'static str {
        match self {
            Code::R0001 => "unreadable path",
            Code::R0002 => "file is not UTF-8",
            Code::R0003 => "file too large",
            Code::R0004 => "no policy files",
            Code::R0005 => "syntax error",
            Code::R0006 => "unclosed delimiter",
            Code::R0007 => "unknown escape",
            Code::R0008 => "nesting too deep",
            Code::R0009 => "bad literal",
            Code::R0010 => "unexpected closing delimiter",
            Code::R0101 => "unknown name",
            Code::R0102 => "duplicate name",
            Code::R0103 => "unknown adapter",
            Code::R0104 => "unknown task",
            Code::R0105 => "duplicate property",
            Code::R0106 => "missing property",
            Code::R0107 => "invalid regex",
            Code::R0108 => "no embeddings endpoint",
            Code::R0201 => "route cycle",
            Code::R0202 => "data class violation",
            Code::R0203 => "no eligible target",
            Code::R0204 => "split weights",
            Code::R0205 => "match without else",
            Code::R0206 => "unreachable match arm",
            Code::R0207 => "capability mismatch",
            Code::R0208 => "max tokens over model limit",
            Code::R0209 => "unpriced paid model under a cost limit",
            Code::R0210 => "literal secret",
            Code::R0211 => "provider trains on inputs",
            Code::R0212 => "provider stores inputs",
            Code::R0213 => "evaluator cycle",
            Code::R0214 => "route too deep",
            Code::R0215 => "route too large to walk",
            Code::R0220 => "residency violation",
            Code::W0301 => "unused provider",
            Code::W0302 => "unused route",
            Code::W0303 => "unused model",
            Code::W0304 => "same provider twice in a row",
            Code::W0305 => "unreachable target",
            Code::W0306 => "mixed-script name",
            Code::W0307 => "no workloads",
            Code::W0308 => "free_first without a free target",
            Code::W0309 => "budget below one call",
            Code::W0310 => "continue without a prefill target",
            Code::W0311 => "worst case over max_cost",
            Code::W0312 => "budget below one worst-case call",
            Code::W0313 => "chat and embedding models mixed",
        }
    }

    /// Whether the code is a warning (`W…`) rather than an error.
    pub const fn is_warning(self) -> bool {
        matches!(
            self,
            Code::W0301
                | Code::W0302
                | Code::W0303
                | Code::W0304
                | Code::W0305
                | Code::W0306
                | Code::W0307
                | Code::W0308
                | Code::W0309
                | Code::W0310
                | Code::W0311
                | Code::W0312
                | Code::W0313
        )
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_named_by_severity() {
        for pair in Code::ALL.windows(2) {
            assert!(pair[0] < pair[1], "{} before {}", pair[0], pair[1]);
            assert!(pair[0].as_str() < pair[1].as_str());
        }
        for c in Code::ALL {
            assert_eq!(c.is_warning(), c.as_str().starts_with('W'), "{c}");
            assert_eq!(format!("{c:?}"), c.as_str());
        }
    }
}
