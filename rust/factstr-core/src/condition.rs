//! The conditions of a conditional append (SPEC §4), checked against a context's version found
//! under the store's write lock. `append_if` and `append_unless` share everything but this test:
//! both compute the highest sequence number of the facts matching a query (its lower bound
//! ignored), and differ only in which versions let the append go ahead.

use crate::error::{Error, Result};
use crate::types::EventQuery;

#[derive(Debug, Clone, Copy)]
pub enum Condition<'a> {
    /// `append_if`: the context version equals `expected` (`None`: the context is empty).
    VersionIs {
        context: &'a EventQuery,
        expected: Option<u64>,
    },
    /// `append_unless`: no matching fact above `after` (`None`: no matching fact at all). The
    /// DCB condition; facts at or below `after` never conflict.
    NoneAfter {
        context: &'a EventQuery,
        after: Option<u64>,
    },
}

impl<'a> Condition<'a> {
    pub fn context(&self) -> &'a EventQuery {
        match *self {
            Condition::VersionIs { context, .. } | Condition::NoneAfter { context, .. } => context,
        }
    }

    /// The version the caller named: reported as `expected` in a conflict.
    pub fn named_version(&self) -> Option<u64> {
        match *self {
            Condition::VersionIs { expected, .. } => expected,
            Condition::NoneAfter { after, .. } => after,
        }
    }

    /// The name of the version argument, for an error about its value.
    pub fn argument_name(&self) -> &'static str {
        match self {
            Condition::VersionIs { .. } => "expected_context_version",
            Condition::NoneAfter { .. } => "after",
        }
    }

    /// Whether a context whose version is `actual` lets the append go ahead.
    pub fn holds(&self, actual: Option<u64>) -> bool {
        match *self {
            Condition::VersionIs { expected, .. } => actual == expected,
            Condition::NoneAfter { after, .. } => match actual {
                None => true,
                Some(actual) => after.is_some_and(|after| actual <= after),
            },
        }
    }

    /// `Ok` when the condition holds for a context at version `actual`, else the conflict.
    pub fn check(&self, actual: Option<u64>) -> Result<()> {
        if self.holds(actual) {
            Ok(())
        } else {
            Err(Error::ConditionalAppendConflict {
                expected: self.named_version(),
                actual,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_after_conflicts_only_with_versions_above_after() {
        let query = EventQuery::all();
        let unless = |after| Condition::NoneAfter {
            context: &query,
            after,
        };
        assert!(unless(None).holds(None));
        assert!(!unless(None).holds(Some(1)));
        assert!(unless(Some(0)).holds(None));
        assert!(!unless(Some(0)).holds(Some(1)));
        assert!(unless(Some(5)).holds(Some(5)));
        assert!(unless(Some(5)).holds(Some(4)));
        assert!(!unless(Some(5)).holds(Some(6)));
        assert_eq!(
            unless(Some(5)).check(Some(7)),
            Err(Error::ConditionalAppendConflict {
                expected: Some(5),
                actual: Some(7)
            })
        );
        let exactly = |expected| Condition::VersionIs {
            context: &query,
            expected,
        };
        assert!(exactly(Some(5)).holds(Some(5)));
        assert!(!exactly(Some(5)).holds(Some(4)));
        assert!(!exactly(Some(0)).holds(None));
        assert!(exactly(None).holds(None));
    }
}
