//! Names the addresses of a heap profile from the binary's debug info,
//! outside the profiled process.
//!
//! clw-auth serves its profiles unsymbolized: each location is an address
//! in a mapping that names the executable and its GNU build ID. Resolving
//! addresses inside the server would load its DWARF into the server's own
//! heap (measured: about 110 MiB of RSS on the first dump), distorting the
//! very memory a load test measures. So the reader symbolizes: clw-cli, on
//! the same host as a server it spawned or with `--heap-profile-symbols`
//! pointing at the same build, as `pprof -symbolize=local` or Parca's
//! agent do. The build ID check makes sure the names belong to the code
//! that ran.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment};

use super::pprof::{Function, Line, Profile};

/// Why a profile could not be symbolized.
#[derive(Debug, thiserror::Error)]
pub enum SymbolizeError {
    #[error("cannot read the binary {path}: {reason}")]
    Binary { path: PathBuf, reason: String },
    #[error(
        "{path} is not the build that served the profile (its build ID is {found}, the profile's is {wanted})"
    )]
    BuildIdMismatch {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("the profile names no binary to symbolize it with (no mappings)")]
    NoMapping,
}

/// A binary's debug info, loaded once for any number of profiles.
pub struct Symbolizer {
    path: PathBuf,
    build_id: Option<String>,
    /// `(file offset, file size, stated address)` of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
    loader: addr2line::Loader,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("path", &self.path)
            .field("build_id", &self.build_id)
            .finish_non_exhaustive()
    }
}

impl Symbolizer {
    /// Loads `path`'s symbol table and DWARF (lazily, as addresses are
    /// asked for) and reads its build ID.
    pub fn open(path: &Path) -> Result<Symbolizer, SymbolizeError> {
        let bad = |reason: String| SymbolizeError::Binary {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|e| bad(e.to_string()))?;
        let cache = object::ReadCache::new(file);
        let obj = object::File::parse(&cache).map_err(|e| bad(e.to_string()))?;
        let build_id = obj.build_id().map_err(|e| bad(e.to_string()))?.map(hex);
        let segments = obj
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, size, s.address())
            })
            .collect();
        let loader = addr2line::Loader::new(path).map_err(|e| bad(e.to_string()))?;
        Ok(Symbolizer {
            path: path.to_path_buf(),
            build_id,
            segments,
            loader,
        })
    }

    /// The binary this symbolizer reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The frames at a stated address, innermost (inlined) first, as
    /// `(function, file, line)`; the symbol table's name when the DWARF has
    /// none; empty when the address is in no known function.
    fn frames(&self, address: u64) -> Vec<(String, String, i64)> {
        // A binary built with line tables only has no function entries in
        // its DWARF: the symbol table names the function then.
        let symbol = || {
            self.loader
                .find_symbol(address)
                .map(|name| addr2line::demangle_auto(name.into(), None).into_owned())
        };
        let mut out = Vec::new();
        if let Ok(mut frames) = self.loader.find_frames(address) {
            while let Ok(Some(frame)) = frames.next() {
                let function = match frame.function.as_ref().and_then(|f| f.demangle().ok()) {
                    Some(name) => name.into_owned(),
                    None => match symbol() {
                        Some(name) => name,
                        None => continue,
                    },
                };
                let (file, line) = frame
                    .location
                    .map(|l| (l.file.unwrap_or("").to_string(), l.line.unwrap_or(0)))
                    .unwrap_or_default();
                out.push((function, file, i64::from(line)));
            }
        }
        if out.is_empty() {
            out.extend(symbol().map(|name| (name, String::new(), 0)));
        }
        out
    }

    /// A location's address in the ELF's own terms. jemalloc_pprof writes
    /// stated addresses already (its mappings start at 0); a mapping with a
    /// real start holds runtime addresses, turned into a file offset and
    /// then into the address of the segment that loads that offset.
    fn stated_address(&self, address: u64, mapping: &super::pprof::Mapping) -> u64 {
        if mapping.memory_start == 0 {
            return address;
        }
        let offset = address - mapping.memory_start + mapping.file_offset;
        self.segments
            .iter()
            .find(|(start, size, _)| (*start..start + size).contains(&offset))
            .map_or(address, |(start, _, vaddr)| offset - start + vaddr)
    }
}

/// What [`symbolize`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Symbolized {
    /// Locations of the binary that were unnamed and now have frames.
    pub named: usize,
    /// Locations of the binary that no function covers.
    pub unknown: usize,
}

/// The binary a profile wants: its first mapping (the executable, as
/// jemalloc_pprof lists it), with the build ID it names, if any.
pub fn profile_binary(profile: &Profile) -> Result<(PathBuf, Option<String>), SymbolizeError> {
    let main = profile.mapping.first().ok_or(SymbolizeError::NoMapping)?;
    let build_id = Some(profile.string(main.build_id)).filter(|s| !s.is_empty());
    Ok((
        PathBuf::from(profile.string(main.filename)),
        build_id.map(str::to_string),
    ))
}

/// Whether some location has no frames yet.
pub fn needs_symbols(profile: &Profile) -> bool {
    profile.location.iter().any(|l| l.line.is_empty())
}

/// Names every unnamed location of `profile` that lies in the binary
/// `sym` reads. The profile's executable mapping must carry the same build
/// ID as the binary (when both have one): names from another build would
/// point at the wrong code.
pub fn symbolize(profile: &mut Profile, sym: &Symbolizer) -> Result<Symbolized, SymbolizeError> {
    let (_, wanted) = profile_binary(profile)?;
    if let (Some(wanted), Some(found)) = (&wanted, &sym.build_id) {
        if wanted != found {
            return Err(SymbolizeError::BuildIdMismatch {
                path: sym.path.clone(),
                found: found.clone(),
                wanted: wanted.clone(),
            });
        }
    }
    // jemalloc_pprof lists one mapping per loaded segment: the
    // executable's are those with its file name and build ID.
    let main = &profile.mapping[0];
    let executable: HashMap<u64, super::pprof::Mapping> = profile
        .mapping
        .iter()
        .filter(|m| m.filename == main.filename && m.build_id == main.build_id)
        .map(|m| (m.id, m.clone()))
        .collect();
    let mut functions: HashMap<(String, String), u64> = profile
        .function
        .iter()
        .map(|f| {
            let key = (
                profile.string(f.name).to_string(),
                profile.string(f.filename).to_string(),
            );
            (key, f.id)
        })
        .collect();
    let mut done = Symbolized::default();
    let mut locations = std::mem::take(&mut profile.location);
    for loc in locations.iter_mut().filter(|l| l.line.is_empty()) {
        let Some(mapping) = executable.get(&loc.mapping_id) else {
            continue;
        };
        let frames = sym.frames(sym.stated_address(loc.address, mapping));
        if frames.is_empty() {
            done.unknown += 1;
            continue;
        }
        done.named += 1;
        for (function, file, line) in frames {
            let function_id = *functions
                .entry((function.clone(), file.clone()))
                .or_insert_with(|| {
                    let id = profile.function.len() as u64 + 1;
                    let (name, filename) = (profile.intern(&function), profile.intern(&file));
                    profile.function.push(Function {
                        id,
                        name,
                        system_name: name,
                        filename,
                    });
                    id
                });
            loc.line.push(Line { function_id, line });
        }
    }
    profile.location = locations;
    if done.named > 0 {
        for m in profile
            .mapping
            .iter_mut()
            .filter(|m| executable.contains_key(&m.id))
        {
            m.has_functions = true;
            m.has_filenames = true;
            m.has_line_numbers = true;
            m.has_inline_frames = true;
        }
        let note = format!("symbolized from {}", sym.path.display());
        let note = profile.intern(&note);
        profile.comment.push(note);
    }
    Ok(done)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::pprof::{Location, Mapping, Sample, ValueType};

    /// A profile of one stack at `address` in the running test binary, as
    /// jemalloc_pprof would serve it (stated address, build ID named).
    fn unsymbolized(address: u64, build_id: &str) -> Profile {
        let mut p = Profile::default();
        let (t, u) = (p.intern("inuse_space"), p.intern("bytes"));
        p.sample_type.push(ValueType { r#type: t, unit: u });
        let exe = std::env::current_exe().unwrap();
        let filename = p.intern(&exe.to_string_lossy());
        let build_id = p.intern(build_id);
        p.mapping.push(Mapping {
            id: 1,
            memory_limit: u64::MAX,
            filename,
            build_id,
            ..Mapping::default()
        });
        p.location.push(Location {
            id: 1,
            mapping_id: 1,
            address,
            line: Vec::new(),
        });
        p.sample.push(Sample {
            location_id: vec![1],
            value: vec![4096],
        });
        p
    }

    #[inline(never)]
    fn a_function_to_find() -> u64 {
        std::hint::black_box(7)
    }

    /// The stated address of `a_function_to_find`, found as a profiler
    /// with runtime addresses would have to: the /proc/self/maps line
    /// that holds it gives the mapping (start, file offset), and the
    /// symbolizer turns that into the ELF's own address.
    fn stated_address_of_test_function(sym: &Symbolizer) -> u64 {
        let runtime = a_function_to_find as *const () as usize as u64;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let (start, end, offset) = maps
            .lines()
            .map(|l| {
                let mut f = l.split_whitespace();
                let (start, end) = f.next().unwrap().split_once('-').unwrap();
                let _perms = f.next();
                let offset = u64::from_str_radix(f.next().unwrap(), 16).unwrap();
                let hex = |s| u64::from_str_radix(s, 16).unwrap();
                (hex(start), hex(end), offset)
            })
            .find(|(start, end, _)| (*start..*end).contains(&runtime))
            .expect("the function's address is mapped");
        let mapping = Mapping {
            memory_start: start,
            memory_limit: end,
            file_offset: offset,
            ..Mapping::default()
        };
        sym.stated_address(runtime, &mapping)
    }

    #[test]
    fn names_a_function_of_this_binary_with_file_and_line() {
        let exe = std::env::current_exe().unwrap();
        let sym = Symbolizer::open(&exe).expect("the test binary has symbols");
        assert_eq!(a_function_to_find(), 7);
        let address = stated_address_of_test_function(&sym);
        let wanted = sym.build_id.clone().unwrap_or_default();
        let mut p = unsymbolized(address, &wanted);
        assert!(needs_symbols(&p));

        let done = symbolize(&mut p, &sym).unwrap();
        assert_eq!(
            done,
            Symbolized {
                named: 1,
                unknown: 0
            }
        );
        assert!(!needs_symbols(&p));
        let heap = crate::heap::HeapProfile::from_pprof(&p).unwrap();
        let frames: Vec<_> = heap.stacks.keys().flatten().collect();
        assert!(
            frames
                .iter()
                .any(|f| f.function.ends_with("a_function_to_find")
                    && f.file.ends_with("heap/symbolize.rs")
                    && f.line > 0),
            "{frames:?}"
        );
        // The rewritten profile still decodes, with its note.
        let again = Profile::decode_bytes(&p.to_gzip()).unwrap();
        assert!(again
            .comment
            .iter()
            .any(|c| again.string(*c).starts_with("symbolized from ")));
    }

    #[test]
    fn refuses_another_build() {
        let exe = std::env::current_exe().unwrap();
        let sym = Symbolizer::open(&exe).unwrap();
        if sym.build_id.is_none() {
            eprintln!("skipped: this test binary was linked without a GNU build ID");
            return;
        }
        let mut p = unsymbolized(0x1000, "00112233445566778899aabbccddeeff00112233");
        let err = symbolize(&mut p, &sym).unwrap_err();
        assert!(
            matches!(err, SymbolizeError::BuildIdMismatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not the build"), "{err}");
        assert!(needs_symbols(&p), "nothing was named");
    }

    #[test]
    fn a_missing_binary_is_a_clear_error() {
        let err = Symbolizer::open(Path::new("/nonexistent/clw-auth")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/clw-auth"), "{err}");
    }
}
