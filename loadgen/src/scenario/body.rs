//! (in progress) JSON request bodies written as TOML values.
