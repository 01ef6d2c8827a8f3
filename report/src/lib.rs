//! clw-report
