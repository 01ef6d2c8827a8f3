//! clw-limit
