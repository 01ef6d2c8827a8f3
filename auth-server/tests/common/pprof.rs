//! What /debug/pprof/heap serves, read with clw-run's pprof model (the one
//! clw-cli uses on the profiles it captures).

use clw_run::heap::HeapProfile;
pub use clw_run::heap::Profile;

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
    /// Every (function name, file, line) a sample's stack passes through.
    fn frames(&self) -> Vec<(String, String, i64)>;

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
        let heap = HeapProfile::from_pprof(self).expect("a heap profile in bytes");
        heap.stacks
            .keys()
            .flatten()
            .map(|f| (f.function.clone(), f.file.clone(), f.line))
            .collect()
    }
}
