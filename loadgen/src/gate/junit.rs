//! The gate's result as JUnit XML, which every CI system shows: one test
//! case per threshold and per baseline metric, a failure carrying the
//! actual value and the bound.

use clw_run::baseline::Comparison;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::markdown::figure;
use super::GateResult;
use crate::outcome::Error;

pub(super) fn render(r: &GateResult) -> Result<String, Error> {
    let mut suite = TestSuite::new("clw-gate");
    for (dir, why) in &r.run_failures {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message(why.clone());
        suite.add_test_case(TestCase::new(format!("run {dir}"), status));
    }
    for (tag, t) in &r.thresholds {
        let name = if tag.is_empty() {
            format!("threshold {}", t.expr)
        } else {
            format!("threshold {} [{tag}]", t.expr)
        };
        let actual = t.actual_shown("missing");
        let status = match t.passed {
            Some(false) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("actual {actual}, needs {}", t.expr));
                s
            }
            Some(true) => TestCaseStatus::success(),
            None => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!(
                    "does not apply to this run ({})",
                    t.why.as_deref().unwrap_or(clw_run::threshold::NO_LIMIT)
                ));
                s
            }
        };
        let mut case = TestCase::new(name, status);
        case.set_classname("threshold");
        suite.add_test_case(case);
    }
    for c in &r.comparisons {
        suite.add_test_case(comparison_case(c));
    }
    let mut report = Report::new("clw");
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| crate::outcome::usage(format!("cannot render JUnit XML: {e}")))
}

fn comparison_case(c: &Comparison) -> TestCase {
    let name = c.metric.as_str();
    let status = if c.passed {
        TestCaseStatus::success()
    } else {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(format!(
            "{name}: run {} against baseline {} ({}), allowed {} {}",
            c.actual
                .map_or_else(|| "missing".into(), |a| figure(name, a)),
            figure(name, c.baseline),
            c.change
                .map_or_else(|| "n/a".into(), |ch| format!("{:+.1}%", ch * 100.0)),
            if c.metric.higher_is_worse() {
                "at most"
            } else {
                "at least"
            },
            figure(name, c.bound),
        ));
        s
    };
    let mut case = TestCase::new(format!("baseline {name}"), status);
    case.set_classname("baseline");
    case
}
