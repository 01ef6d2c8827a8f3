//! Just enough of pprof's profile.proto to check what /debug/pprof/heap
//! serves: samples, and the function names and files they resolve to.

use std::io::Read;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
}

/// Gunzips and decodes a profile; panics with the reason if it is not one.
pub fn decode(body: &[u8]) -> Profile {
    assert_eq!(
        body.get(..2),
        Some(&[0x1f, 0x8b][..]),
        "not gzip: {} bytes starting {:02x?}",
        body.len(),
        &body[..body.len().min(8)]
    );
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut raw)
        .expect("gunzips");
    prost::Message::decode(raw.as_slice()).expect("decodes as a pprof Profile")
}

impl Profile {
    pub fn string(&self, i: i64) -> &str {
        self.string_table.get(i as usize).map_or("", String::as_str)
    }

    /// Every (function name, file, line) a sample's stack passes through.
    pub fn frames(&self) -> Vec<(String, String, i64)> {
        let funcs: std::collections::HashMap<u64, &Function> =
            self.function.iter().map(|f| (f.id, f)).collect();
        let locs: std::collections::HashMap<u64, &Location> =
            self.location.iter().map(|l| (l.id, l)).collect();
        let mut out = Vec::new();
        for s in &self.sample {
            for id in &s.location_id {
                for line in locs.get(id).map_or(&[][..], |l| &l.line[..]) {
                    if let Some(f) = funcs.get(&line.function_id) {
                        out.push((
                            self.string(f.name).to_string(),
                            self.string(f.filename).to_string(),
                            line.line,
                        ));
                    }
                }
            }
        }
        out
    }

    /// Whether some sample's stack names a clw_auth function with its
    /// source file and a line number.
    pub fn names_clw_auth(&self) -> bool {
        self.frames().iter().any(|(name, file, line)| {
            name.contains("clw_auth::") && file.contains("auth-server/src/") && *line > 0
        })
    }
}
