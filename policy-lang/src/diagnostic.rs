//! The one shape behind every public error and warning: a code, a one-line
//! message, optional help, labelled spans and the policy's sources.
//!
//! Public error types (in `errors.rs`) each wrap a [`Diag`] next to their own
//! typed, private fields; [`diagnostic_struct!`] gives them `Display`,
//! `Error` and miette's `Diagnostic` by delegating here, so the code shown is
//! always the one from [`Code`] and never a string typed twice.

use std::sync::Arc;

use miette::{LabeledSpan, Severity, SourceCode};

use crate::code::Code;
use crate::source::{Loc, SourceMap, Span};

/// A rendered-ready diagnostic.
#[derive(Clone, Debug)]
pub(crate) struct Diag {
    pub(crate) code: Code,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
    pub(crate) labels: Vec<LabeledSpan>,
    pub(crate) loc: Option<Loc>,
}

impl Diag {
    /// A diagnostic with no source location (e.g. an unreadable path).
    pub(crate) fn bare(code: Code, message: impl Into<String>) -> Self {
        Diag {
            code,
            message: message.into(),
            help: None,
            labels: Vec::new(),
            loc: None,
        }
    }

    /// A diagnostic whose primary label is `span`.
    pub(crate) fn at(
        code: Code,
        message: impl Into<String>,
        src: &Arc<SourceMap>,
        span: Span,
        label: impl Into<String>,
    ) -> Self {
        let label = label.into();
        let label = (!label.is_empty()).then_some(label);
        Diag {
            code,
            message: message.into(),
            help: None,
            labels: vec![LabeledSpan::new_primary_with_span(label, span)],
            loc: Some(Loc {
                span,
                src: Arc::clone(src),
            }),
        }
    }

    /// Adds a secondary label.
    #[must_use]
    pub(crate) fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(LabeledSpan::new_with_span(Some(text.into()), span));
        self
    }

    /// Sets the help text.
    #[must_use]
    pub(crate) fn help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }

    /// Sets the help text when there is one.
    #[must_use]
    pub(crate) fn maybe_help(mut self, text: Option<String>) -> Self {
        if text.is_some() {
            self.help = text;
        }
        self
    }

    /// Where the primary label starts: `(file index, offset)` for sorting.
    pub(crate) fn sort_key(&self) -> (usize, usize) {
        match &self.loc {
            Some(loc) => (loc.src.file_index(loc.span.start), loc.span.start),
            None => (0, 0),
        }
    }

    pub(crate) fn severity(&self) -> Severity {
        if self.code.is_warning() {
            Severity::Warning
        } else {
            Severity::Error
        }
    }

    pub(crate) fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }

    pub(crate) fn source_code(&self) -> Option<&dyn SourceCode> {
        self.loc.as_ref().map(|l| l as &dyn SourceCode)
    }
}

/// Declares a public diagnostic type: a struct with crate-private fields and a
/// [`Diag`], plus its `Display`, `Error` and `Diagnostic` impls.
macro_rules! diagnostic_struct {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        pub struct $name {
            $(pub(crate) $field: $ty,)*
            pub(crate) diag: $crate::diagnostic::Diag,
        }

        impl $name {
            #[allow(dead_code, reason = "not every diagnostic is inspected inside the crate")]
            pub(crate) fn diag(&self) -> &$crate::diagnostic::Diag {
                &self.diag
            }

            /// The stable code of this diagnostic.
            pub fn code(&self) -> $crate::code::Code {
                self.diag.code
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.diag.message)
            }
        }

        impl std::error::Error for $name {}

        impl miette::Diagnostic for $name {
            fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
                Some(Box::new(self.diag.code))
            }
            fn severity(&self) -> Option<miette::Severity> {
                Some(self.diag.severity())
            }
            fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
                self.diag.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display + 'a>)
            }
            fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
                self.diag.labels()
            }
            fn source_code(&self) -> Option<&dyn miette::SourceCode> {
                self.diag.source_code()
            }
        }
    };
}

/// Declares a public error enum whose variants each wrap one diagnostic type.
macro_rules! diagnostic_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident($inner:ty)),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, thiserror::Error)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[error(transparent)]
                $variant($inner),
            )*
        }

        impl $name {
            fn inner(&self) -> &dyn miette::Diagnostic {
                match self {
                    $($name::$variant(e) => e,)*
                }
            }
        }

        // Written out rather than derived: miette's `transparent` would call
        // the inherent `code()` (which returns a `Code`) instead of the trait's.
        impl miette::Diagnostic for $name {
            fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
                miette::Diagnostic::code(self.inner())
            }
            fn severity(&self) -> Option<miette::Severity> {
                miette::Diagnostic::severity(self.inner())
            }
            fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
                miette::Diagnostic::help(self.inner())
            }
            fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
                miette::Diagnostic::labels(self.inner())
            }
            fn source_code(&self) -> Option<&dyn miette::SourceCode> {
                miette::Diagnostic::source_code(self.inner())
            }
        }

        impl $name {
            pub(crate) fn diag(&self) -> &$crate::diagnostic::Diag {
                match self {
                    $($name::$variant(e) => e.diag(),)*
                }
            }

            /// The stable code of this diagnostic.
            pub fn code(&self) -> $crate::code::Code {
                self.diag().code
            }
        }

        $(
            impl From<$inner> for $name {
                fn from(e: $inner) -> Self {
                    $name::$variant(e)
                }
            }
        )*
    };
}

pub(crate) use {diagnostic_enum, diagnostic_struct};
