//! Just enough of pprof's profile.proto (github.com/google/pprof,
//! proto/profile.proto) to read heap profiles by stack, and to write small
//! ones for tests. Field tags are the proto's; fields not listed here are
//! skipped by prost when decoding.

use std::io::{Read, Write};

use super::HeapError;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    /// When the profile was taken (ns since the Unix epoch); kept so a
    /// profile symbolized and written again still says when.
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    /// Free-form notes (string table indices), e.g. who symbolized it.
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
}

/// A binary or shared object the profiled process had loaded. A profile
/// served unsymbolized (clw-auth's) names the file and its GNU build ID
/// here, so the binary can be found and checked; its locations' addresses
/// are then the ELF's own (stated) virtual addresses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

/// A sample column: `type` and `unit` index the string table
/// (`inuse_space`/`bytes` for a heap profile).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// One stack (`location_id`, leaf first) and its values, one per sample type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
}

/// A code address; `line` holds its frames, innermost (inlined) first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The [`Mapping`] the address lies in; 0 when unknown.
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
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

/// `name` and `filename` index the string table.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// The mangled name, as the symbol table has it.
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
}

impl Profile {
    /// Gunzips (when gzipped, as every pprof server sends it) and decodes.
    pub fn decode_bytes(body: &[u8]) -> Result<Profile, HeapError> {
        let raw;
        let proto = if body.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            let cap = crate::bounded::PROFILE_INFLATED_CAP;
            flate2::read::GzDecoder::new(body)
                .take(cap + 1)
                .read_to_end(&mut out)
                .map_err(|e| HeapError::Format(format!("not valid gzip: {e}")))?;
            if out.len() as u64 > cap {
                return Err(HeapError::Format(format!(
                    "inflates past the {cap} bytes a heap profile may be"
                )));
            }
            raw = out;
            &raw[..]
        } else {
            body
        };
        <Profile as prost::Message>::decode(proto)
            .map_err(|e| HeapError::Format(format!("not a pprof profile: {e}")))
    }

    /// Gzipped protobuf, as `/debug/pprof/heap` serves it.
    pub fn to_gzip(&self) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&prost::Message::encode_to_vec(self))
            .and_then(|()| gz.finish())
            .expect("gzip into memory cannot fail")
    }

    /// The index of `s` in the string table, added when absent.
    pub fn intern(&mut self, s: &str) -> i64 {
        if self.string_table.is_empty() {
            self.string_table.push(String::new());
        }
        let at = self.string_table.iter().position(|t| t == s);
        at.unwrap_or_else(|| {
            self.string_table.push(s.to_string());
            self.string_table.len() - 1
        }) as i64
    }

    /// Entry `i` of the string table; "" when out of range.
    pub fn string(&self, i: i64) -> &str {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.string_table.get(i))
            .map_or("", String::as_str)
    }
}

/// Builds small heap profiles (`inuse_space` in bytes), for tests and
/// fixtures: each sample is a stack of `(function, file, line)`, leaf first.
#[derive(Debug, Default)]
pub struct ProfileBuilder {
    samples: Vec<(Vec<BuilderFrame>, i64)>,
}

/// `(function, file, line)`.
type BuilderFrame = (String, String, i64);

impl ProfileBuilder {
    pub fn new() -> ProfileBuilder {
        ProfileBuilder::default()
    }

    /// Adds a stack (leaf first) holding `bytes` live.
    pub fn sample(mut self, stack: &[(&str, &str, i64)], bytes: i64) -> ProfileBuilder {
        let stack = stack
            .iter()
            .map(|(f, file, line)| (f.to_string(), file.to_string(), *line))
            .collect();
        self.samples.push((stack, bytes));
        self
    }

    pub fn build(self) -> Profile {
        let mut p = Profile {
            string_table: vec![String::new()],
            ..Profile::default()
        };
        let intern = |p: &mut Profile, s: &str| p.intern(s);
        let (t, u) = (intern(&mut p, "inuse_space"), intern(&mut p, "bytes"));
        p.sample_type.push(ValueType { r#type: t, unit: u });
        for (stack, bytes) in self.samples {
            let mut ids = Vec::new();
            for (function, file, line) in stack {
                let (name, filename) = (intern(&mut p, &function), intern(&mut p, &file));
                let fid = match p
                    .function
                    .iter()
                    .find(|f| f.name == name && f.filename == filename)
                {
                    Some(f) => f.id,
                    None => {
                        let id = p.function.len() as u64 + 1;
                        p.function.push(Function {
                            id,
                            name,
                            system_name: name,
                            filename,
                        });
                        id
                    }
                };
                let id = p.location.len() as u64 + 1;
                p.location.push(Location {
                    id,
                    mapping_id: 0,
                    address: 0x1000 * id,
                    line: vec![Line {
                        function_id: fid,
                        line,
                    }],
                });
                ids.push(id);
            }
            p.sample.push(Sample {
                location_id: ids,
                value: vec![bytes],
            });
        }
        p
    }
}
