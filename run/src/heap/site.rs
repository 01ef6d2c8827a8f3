//! Which frame of an allocation stack names the allocation site.
//!
//! The rule, leaf to root (docs/memory.md, "Growth sites"):
//! 1. skip allocator and runtime machinery: frames whose source is the Rust
//!    standard library (`/rustc/...`, `/rust/deps/...`: `alloc::`, `core::`,
//!    `std::`, std's hashbrown), the allocator's C code (jemalloc's build
//!    tree, libc), and the global-allocator hooks (`__rust_alloc`,
//!    `__rustc::*`, any `GlobalAlloc` impl, even the program's own
//!    wrapper);
//! 2. the site is the first remaining frame of the program itself (a file
//!    outside the cargo registry and every toolchain tree), so a
//!    `HashMap::insert` reached from `LeakyCache::insert` is charged to
//!    `LeakyCache::insert`;
//! 3. when no frame of the program is on the stack, the first remaining
//!    frame (a dependency, e.g. hyper's read buffer); failing that, the leaf.
//!
//! Stacks through the profiler itself (jemalloc_pprof, pprof_util and the
//! symbolizer's caches) are not the program's memory: the first dump
//! allocates them, every later profile shows them, so a diff would name
//! them as growth. [`is_profiler`] drops them.

use super::profile::Frame;

/// Source paths of code that is not the program's: the cargo registry and
/// git checkouts, the Rust toolchain (std is built from `/rustc/<hash>/`,
/// its vendored crates from `/rust/deps/`), build-script output (jemalloc's
/// C sources), system and libc sources, Go's module cache and runtime.
const DEPENDENCY_PATHS: &[&str] = &[
    "/.cargo/registry/",
    "/.cargo/git/",
    "/rustc/",
    "/rust/deps/",
    "/rustlib/",
    "/out/build/",
    "/usr/",
    "/pkg/mod/",
    "/go/src/runtime/",
];

/// Allocator entry points and hooks, by function name.
const ALLOCATOR_FUNCTIONS: &[&str] = &[
    "__rust_",
    "__rustc::",
    "__rdl_",
    "__rg_",
    "_rjem_",
    "je_",
    "prof_",
    "imalloc",
    "irallocx",
    "ialloc",
    "do_rallocx",
    "malloc",
    "calloc",
    "realloc",
    "posix_memalign",
    "aligned_alloc",
    "runtime.",
];

/// Crates whose frames are runtime machinery wherever their file lives.
const RUNTIME_CRATES: &[&str] = &["alloc::", "core::", "std::", "hashbrown::"];

/// The profiler's own allocations, recognised by any frame on the stack.
const PROFILER_CRATES: &[&str] = &["jemalloc_pprof::", "pprof_util::", "backtrace::symbolize::"];

fn is_dependency_file(file: &str) -> bool {
    file.is_empty() || file.starts_with("./") || DEPENDENCY_PATHS.iter().any(|p| file.contains(p))
}

/// The path a function belongs to: `<clw::X as core::Clone>::clone` belongs
/// to `clw::X`'s crate, `<u8 as alloc::..>::from_elem` (a primitive or a
/// generic parameter) to the trait's.
fn owner(function: &str) -> &str {
    let Some(inner) = function.strip_prefix('<') else {
        return function;
    };
    let inner = inner
        .trim_start_matches(['&', '*', '['])
        .trim_start_matches("mut ");
    match inner.split_once(" as ") {
        Some((self_ty, rest)) if !self_ty.contains("::") => rest,
        _ => inner,
    }
}

/// Allocator or runtime machinery (rule 1).
pub(crate) fn is_machinery(frame: &Frame) -> bool {
    let f = frame.function.as_str();
    let file = frame.file.as_str();
    ALLOCATOR_FUNCTIONS.iter().any(|p| f.starts_with(p))
        || f.contains("GlobalAlloc>::")
        || RUNTIME_CRATES.iter().any(|c| owner(f).starts_with(c))
        || file.contains("/rustc/")
        || file.contains("/rust/deps/")
        || file.contains("/out/build/")
        || (file.is_empty() && f.starts_with("0x"))
}

/// A frame of the program under test (rule 2).
pub(crate) fn is_program(frame: &Frame) -> bool {
    !is_machinery(frame) && !is_dependency_file(&frame.file)
}

/// The frame charged with a stack's bytes (leaf first), per the rule above.
pub(crate) fn site(stack: &[Frame]) -> Option<&Frame> {
    stack
        .iter()
        .find(|f| is_program(f))
        .or_else(|| stack.iter().find(|f| !is_machinery(f)))
        .or_else(|| stack.first())
}

/// A stack allocated by the profiler itself.
pub(crate) fn is_profiler(stack: &[Frame]) -> bool {
    stack
        .iter()
        .any(|f| PROFILER_CRATES.iter().any(|c| f.function.contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: &str) -> Frame {
        Frame {
            function: function.into(),
            file: file.into(),
            line: 1,
        }
    }

    #[test]
    fn allocator_hooks_and_std_are_machinery() {
        for (f, file) in [
            (
                "_rjem_je_prof_backtrace",
                "/x/target/release/build/tikv-jemalloc-sys-1/out/build/src/prof.c",
            ),
            (
                "<clw_auth::oom::OomAware<A> as core::alloc::global::GlobalAlloc>::alloc",
                "/w/auth-server/src/oom.rs",
            ),
            ("__rustc::__rust_alloc", "/w/auth-server/src/main.rs"),
            (
                "alloc::raw_vec::RawVecInner<A>::grow_one",
                "/rustc/abc/library/alloc/src/raw_vec/mod.rs",
            ),
            (
                "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem",
                "/rustc/abc/library/alloc/src/vec/spec_from_elem.rs",
            ),
            (
                "hashbrown::raw::RawTableInner::new_uninitialized",
                "/rust/deps/hashbrown-0.16.1/src/raw/mod.rs",
            ),
            (
                "std::collections::hash::map::HashMap<K,V,S,A>::insert",
                "/rustc/abc/library/std/src/collections/hash/map.rs",
            ),
            (
                "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
                "",
            ),
        ] {
            assert!(is_machinery(&frame(f, file)), "{f}");
        }
    }

    #[test]
    fn program_frames_and_program_trait_impls_are_not() {
        let program = frame(
            "clw_auth::cache::leaky::LeakyCache::insert",
            "/w/auth-server/src/cache/leaky.rs",
        );
        assert!(is_program(&program));
        let clone = frame(
            "<clw_auth::session::Session as core::clone::Clone>::clone",
            "/w/auth-server/src/session.rs",
        );
        assert!(is_program(&clone));
        let dep = frame(
            "hyper::proto::h1::io::Buffered<T,B>::poll_read_from_io",
            "/root/.cargo/registry/src/x/hyper-1/src/proto/h1/io.rs",
        );
        assert!(!is_machinery(&dep) && !is_program(&dep));
    }

    #[test]
    fn site_prefers_the_program_then_a_dependency_then_the_leaf() {
        let alloc = frame("__rustc::__rust_alloc", "/w/src/main.rs");
        let dep = frame("hyper::read", "/root/.cargo/registry/src/hyper/io.rs");
        let prog = frame("app::handler", "/w/src/handler.rs");
        assert_eq!(
            site(&[alloc.clone(), dep.clone(), prog.clone()]),
            Some(&prog)
        );
        assert_eq!(site(&[alloc.clone(), dep.clone()]), Some(&dep));
        assert_eq!(site(std::slice::from_ref(&alloc)), Some(&alloc));
        assert_eq!(site(&[]), None);
    }
}
