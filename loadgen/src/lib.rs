//! clw-cli
