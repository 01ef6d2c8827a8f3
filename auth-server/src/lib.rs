//! clw-auth
