//! Heap profiles: decoding, the diff by stack, the ranking of growth sites,
//! on profiles built here and on real ones from a leaky clw-auth
//! (`--config profiles/leaky.json`, the `unbounded` leak), each taken after
//! 2,000 logins and again later: tests/fixtures/heap-leaky (40,000 more
//! logins, no claims) and tests/fixtures/heap-leaky-claims (20,000 more,
//! each with 1.5 KB of claims).

use std::path::Path;

use clw_run::heap::{self, HeapDiff, HeapError, HeapProfile, ProfileBuilder};

const ALLOC: (&str, &str, i64) = (
    "<tikv_jemallocator::Jemalloc as core::alloc::global::GlobalAlloc>::alloc",
    "/root/.cargo/registry/src/index.crates.io-0/tikv-jemallocator-0.7.0/src/lib.rs",
    90,
);
const RUST_ALLOC: (&str, &str, i64) = ("__rustc::__rust_alloc", "/app/src/main.rs", 1);
const RAW_TABLE: (&str, &str, i64) = (
    "hashbrown::raw::RawTableInner::new_uninitialized",
    "/rust/deps/hashbrown-0.16.1/src/raw/mod.rs",
    10,
);
const INSERT: (&str, &str, i64) = ("app::cache::Cache::insert", "/app/src/cache.rs", 42);
const LOGIN: (&str, &str, i64) = ("app::routes::login", "/app/src/routes.rs", 7);
const PARSE: (&str, &str, i64) = ("app::routes::parse", "/app/src/routes.rs", 20);
const HYPER: (&str, &str, i64) = (
    "hyper::proto::h1::io::Buffered<T,B>::poll_read",
    "/root/.cargo/registry/src/index.crates.io-0/hyper-1.0.0/src/proto/h1/io.rs",
    200,
);
const PPROF: (&str, &str, i64) = (
    "jemalloc_pprof::JemallocProfCtl::dump_pprof",
    "/root/.cargo/registry/src/index.crates.io-0/jemalloc_pprof-0.9.0/src/lib.rs",
    5,
);

fn decode(b: ProfileBuilder) -> HeapProfile {
    HeapProfile::decode(&b.build().to_gzip()).expect("decodes")
}

/// First: cache 1 MB, parse buffer 4 MB, hyper 1 MB. Last: the cache grew
/// by 9 MB through two allocator paths, parse shrank to 1 MB, hyper grew
/// 1 MB with no program frame above it, the profiler appeared with 50 MB.
fn first_and_last() -> (HeapProfile, HeapProfile) {
    let first = ProfileBuilder::new()
        .sample(&[ALLOC, RUST_ALLOC, RAW_TABLE, INSERT, LOGIN], 1_000_000)
        .sample(&[ALLOC, RUST_ALLOC, PARSE, LOGIN], 4_000_000)
        .sample(&[ALLOC, HYPER], 1_000_000);
    let last = ProfileBuilder::new()
        .sample(&[ALLOC, RUST_ALLOC, RAW_TABLE, INSERT, LOGIN], 4_000_000)
        .sample(&[ALLOC, RUST_ALLOC, INSERT, LOGIN], 6_000_000)
        .sample(&[ALLOC, RUST_ALLOC, PARSE, LOGIN], 1_000_000)
        .sample(&[ALLOC, HYPER], 2_000_000)
        .sample(&[ALLOC, PPROF], 50_000_000);
    (decode(first), decode(last))
}

#[test]
fn a_profile_round_trips_by_stack() {
    let (first, last) = first_and_last();
    assert_eq!(first.stacks.len(), 3);
    assert_eq!(first.total_bytes(), 6_000_000);
    assert_eq!(last.total_bytes(), 63_000_000);
    let leaf = &first.stacks.keys().next().unwrap()[0];
    assert_eq!(leaf.function, ALLOC.0);
    assert_eq!(leaf.line, 90);
}

#[test]
fn the_diff_is_by_stack_and_leaves_out_the_profiler() {
    let (first, last) = first_and_last();
    let diff = HeapDiff::between(&first, &last);
    assert_eq!(diff.stacks.len(), 4, "{:#?}", diff.stacks);
    assert_eq!(
        diff.net_bytes(),
        3_000_000 + 6_000_000 - 3_000_000 + 1_000_000
    );
    assert!(diff
        .stacks
        .keys()
        .all(|s| s.iter().all(|f| !f.function.contains("pprof"))));
}

#[test]
fn sites_rank_by_bytes_grown_past_allocator_frames() {
    let (first, last) = first_and_last();
    let sites = HeapDiff::between(&first, &last).growth_sites(10);
    // The cache's two paths (through hashbrown and direct) are one site;
    // hyper has no program frame above it, so hyper is its site; the parse
    // buffer shrank and is not listed.
    let named: Vec<(&str, u64)> = sites
        .iter()
        .map(|s| (s.function.as_str(), s.bytes_grown))
        .collect();
    assert_eq!(named, vec![(INSERT.0, 9_000_000), (HYPER.0, 1_000_000)]);
    assert_eq!(sites[0].location(), "/app/src/cache.rs:42");
    assert!((sites[0].share_percent - 90.0).abs() < 1e-9);
    assert!((sites.iter().map(|s| s.share_percent).sum::<f64>() - 100.0).abs() < 1e-9);
    assert_eq!(HeapDiff::between(&first, &last).growth_sites(1).len(), 1);
}

#[test]
fn a_heap_that_shrank_has_no_growth_sites() {
    let (first, last) = first_and_last();
    let diff = HeapDiff::between(&last, &first);
    assert!(diff.net_bytes() < 0);
    let sites = diff.growth_sites(10);
    // Only the parse buffer grew going backwards.
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].function, PARSE.0);
    let same = HeapDiff::between(&first, &first);
    assert!(same.stacks.is_empty() && same.growth_sites(10).is_empty());
    assert!(same.folded().is_empty());
}

#[test]
fn folded_stacks_run_root_to_site() {
    let (first, last) = first_and_last();
    let folded = HeapDiff::between(&first, &last).folded();
    assert!(
        folded.contains(&"app::routes::login (src/routes.rs:7);app::cache::Cache::insert (src/cache.rs:42) 9000000".to_string()),
        "{folded:#?}"
    );
    assert!(
        folded
            .iter()
            .all(|l| !l.contains("jemalloc") && !l.contains("parse")),
        "{folded:#?}"
    ); // No program frame above hyper: its stack is kept whole, site at the tip.
    let hyper = "hyper::proto::h1::io::Buffered<T,B>::poll_read (h1/io.rs:200) 1000000";
    assert!(folded.contains(&hyper.to_string()), "{folded:#?}");
}

#[test]
fn real_folded_stacks_start_at_the_programs_outermost_frame() {
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/heap-leaky");
    let folded = heap::diff_run(&run).unwrap().unwrap().folded();
    assert!(!folded.is_empty());
    for line in &folded {
        assert!(line.starts_with("clw_auth::"), "{line}");
        assert!(
            !line.contains("tokio::runtime") && !line.contains("_rjem_"),
            "{line}"
        );
    }
}

#[test]
fn a_corrupt_profile_is_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.0.pb.gz");
    for (body, why) in [
        (&b"\x1f\x8b\x08\x00garbage"[..], "not valid gzip"),
        (&b"\x0a\xff\xff\xff\xff\x0f"[..], "not a pprof profile"),
    ] {
        std::fs::write(&path, body).unwrap();
        let err = HeapProfile::read(&path).unwrap_err();
        assert!(matches!(err, HeapError::Corrupt { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("1.0.pb.gz") && text.contains(why), "{text}");
    }
    let err = HeapProfile::read(&dir.path().join("absent.pb.gz")).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn profile_files_are_ordered_by_time_and_diffed_last_against_first() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        heap::diff_run(dir.path()).unwrap().is_none(),
        "no heap folder"
    );
    let heap_dir = dir.path().join(heap::HEAP_DIR);
    std::fs::create_dir(&heap_dir).unwrap();
    let (first, last) = (
        ProfileBuilder::new().sample(&[INSERT], 100),
        ProfileBuilder::new().sample(&[INSERT], 700),
    );
    std::fs::write(
        heap_dir.join(heap::profile_file_name(30.0)),
        first.build().to_gzip(),
    )
    .unwrap();
    assert!(heap::diff_run(dir.path()).unwrap().is_none(), "one profile");
    std::fs::write(
        heap_dir.join(heap::profile_file_name(120.5)),
        last.build().to_gzip(),
    )
    .unwrap();
    std::fs::write(heap_dir.join("notes.txt"), "ignored").unwrap();
    std::fs::write(heap_dir.join(heap::profile_file_name(60.0)), b"not read").unwrap();
    let times: Vec<f64> = heap::profile_files(dir.path())
        .unwrap()
        .iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(times, vec![30.0, 60.0, 120.5]);
    let sites = heap::diff_run(dir.path()).unwrap().unwrap().growth_sites(5);
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].bytes_grown, 600);
}

fn real_sites(fixture: &str) -> Vec<clw_run::GrowthSite> {
    let run = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let sites = heap::diff_run(&run)
        .unwrap()
        .expect("two profiles")
        .growth_sites(5);
    for s in &sites {
        eprintln!(
            "{:>10} {:5.1}% {} {}",
            s.bytes_grown,
            s.share_percent,
            s.function,
            s.location()
        );
    }
    sites
}

#[test]
fn a_real_leaky_clw_auth_grows_in_its_cache() {
    let sites = real_sites("heap-leaky");
    let top = &sites[0];
    assert!(
        top.file
            .as_deref()
            .is_some_and(|f| f.contains("auth-server/src/cache/")),
        "top site outside the cache: {top:?}"
    );
    assert!(top.function.starts_with("clw_auth::cache::"), "{top:?}");
    assert!(top.line.is_some_and(|l| l > 0));
    assert!(top.share_percent > 50.0, "{top:?}");
    // 40,000 leaked sessions, sampled every 512 KiB.
    assert!(top.bytes_grown > 1_000_000, "{top:?}");
    // The symbolizer's caches, allocated by the first dump, are left out.
    assert!(
        sites.iter().all(|s| !s.function.contains("backtrace::")),
        "{sites:?}"
    );
}

#[test]
fn a_real_leaky_clw_auth_with_claims_grows_where_the_claims_are_copied() {
    // The leaked bytes are mostly the claims each session holds: their
    // allocation site is the login request that copies them; the cache's
    // own growth (its map) comes next.
    let sites = real_sites("heap-leaky-claims");
    let top = &sites[0];
    assert!(
        top.function.starts_with("clw_auth::routes::login"),
        "{top:?}"
    );
    assert!(
        top.file
            .as_deref()
            .is_some_and(|f| f.ends_with("auth-server/src/routes.rs")),
        "{top:?}"
    );
    assert!(top.bytes_grown > 10_000_000, "{top:?}");
    assert!(
        sites[1..]
            .iter()
            .any(|s| s.function.starts_with("clw_auth::cache::")),
        "{sites:?}"
    );
}
