//! What /debug/pprof/heap serves, read with clw-run's pprof model (the one
//! clw-cli uses on the profiles it captures), and symbolized as clw-cli
//! symbolizes them: from the binary the profile names.

pub use clw_run::heap::Profile;
use clw_run::heap::{HeapProfile, Symbolizer};

/// Gunzips and decodes a profile; panics with the reason if it is not one.
pub fn decode(body: &[u8]) -> Profile {
    assert_eq!(
        body.get(..2),
        Some(&[0x1f, 0x8b][..]),
        "not gzip: {} bytes starting {:02x?}",
        body.len(),
        &body[..body.len().min(8)]
    );
    Profile::decode_bytes(body).expect("a gzipped pprof Profile")
}

/// Checks on a decoded profile.
pub trait ProfileExt {
    /// Every (function name, file, line) a sample's stack passes through,
    /// after symbolizing from the executable the profile names.
    fn frames(&self) -> Vec<(String, String, i64)>;

    /// The profile is served as clw-auth serves it: addresses only (the
    /// server never loads its own debug info), its first mapping naming
    /// `exe` and a GNU build ID to check a symbolizer's binary against.
    fn is_unsymbolized_for(&self, exe: &std::path::Path) -> bool;

    /// Whether some sample's stack names a clw_auth function with its
    /// source file and a line number.
    fn names_clw_auth(&self) -> bool {
        self.frames().iter().any(|(name, file, line)| {
            name.contains("clw_auth::") && file.contains("auth-server/src/") && *line > 0
        })
    }
}

impl ProfileExt for Profile {
    fn frames(&self) -> Vec<(String, String, i64)> {
        let mut named = self.clone();
        let (exe, _) = clw_run::heap::profile_binary(&named).expect("a mapping");
        let sym = Symbolizer::open(&exe).expect("the binary the profile names");
        clw_run::heap::symbolize(&mut named, &sym).expect("the same build");
        let heap = HeapProfile::from_pprof(&named).expect("a heap profile in bytes");
        heap.stacks
            .keys()
            .flatten()
            .map(|f| (f.function.clone(), f.file.clone(), f.line))
            .collect()
    }

    fn is_unsymbolized_for(&self, exe: &std::path::Path) -> bool {
        let Ok((named, build_id)) = clw_run::heap::profile_binary(self) else {
            return false;
        };
        let same = |a: &std::path::Path| std::fs::canonicalize(a).ok();
        self.function.is_empty()
            && clw_run::heap::needs_symbols(self)
            && same(&named).is_some()
            && same(&named) == same(exe)
            && build_id.is_some()
    }
}
