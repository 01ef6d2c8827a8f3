//! jemalloc heap profiling: switched on at start-up from
//! `authentication.memory.heap_profile`, dumped as pprof for
//! `GET /debug/pprof/heap`.
//!
//! jemalloc reads `prof:true` only when it initialises, before any config
//! is loaded, so the binary builds it with profiling present but inactive
//! (see [`heap_profiling_malloc_conf!`](crate::heap_profiling_malloc_conf));
//! here the config turns sampling on (`prof.active`) at its rate
//! (`prof.reset` takes `lg_prof_sample`), or leaves it off, where it costs
//! nothing. jemalloc_pprof turns jemalloc's dump into a gzipped pprof
//! protobuf of addresses, with a mapping that names this executable and
//! its GNU build ID.
//!
//! The profile is not symbolized here: resolving addresses in-process
//! loads the binary's DWARF into this heap (measured: RSS +110 MiB on the
//! first dump), which would distort the memory a load test measures. The
//! reader symbolizes from the same binary, as `pprof -symbolize=local`
//! does; clw-cli does it for every profile it captures (clw-run's
//! `heap::Symbolizer`), checking the build ID.

use libc::size_t;
use tikv_jemalloc_ctl::raw;

use crate::config::HeapProfileConfig;
use crate::units::format_size;

/// jemalloc's options for a binary whose heap can be profiled: profiling
/// compiled in and armed, inactive until the config says otherwise, one
/// sample per 512 KiB allocated (2^19).
pub const MALLOC_CONF: &std::ffi::CStr = c"prof:true,prof_active:false,lg_prof_sample:19";

/// `malloc_conf` as the C symbol jemalloc reads at start-up.
#[repr(transparent)]
pub struct MallocConf(pub *const std::ffi::c_char);

// SAFETY: it points at a `'static` C string that nothing writes.
unsafe impl Sync for MallocConf {}

/// Exports [`MALLOC_CONF`] under the name tikv-jemallocator's prefixed
/// jemalloc reads (`_rjem_malloc_conf`). Expand it once, in the binary
/// (or test) that sets jemalloc as the global allocator: a library cannot
/// export it reliably, and must not choose for its embedders.
#[macro_export]
macro_rules! heap_profiling_malloc_conf {
    () => {
        #[export_name = "_rjem_malloc_conf"]
        #[used]
        static _RJEM_MALLOC_CONF: $crate::profiling::MallocConf =
            $crate::profiling::MallocConf($crate::profiling::MALLOC_CONF.as_ptr());
    };
}

/// Whether this server serves heap profiles, decided at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapProfiling {
    /// Sampling every `sample_bytes` allocated on average.
    Active {
        /// The sampling interval in force.
        sample_bytes: u64,
    },
    /// `heap_profile.enabled` is false.
    Off,
    /// The process's jemalloc was not started with `prof:true` (another
    /// global allocator, or a binary without [`MALLOC_CONF`]).
    Unavailable,
}

impl HeapProfiling {
    /// Why there is no profile to serve, if there is none.
    pub(crate) fn why_not(self) -> Option<&'static str> {
        match self {
            HeapProfiling::Active { .. } => None,
            HeapProfiling::Off => Some(
                "heap profiling is off (authentication.memory.heap_profile.enabled = false, CLAW_MEMORY_HEAP_PROFILE)",
            ),
            HeapProfiling::Unavailable => Some(
                "this process's allocator was not started with jemalloc heap profiling (prof:true); a clw-auth binary built with the dhat-heap feature has none",
            ),
        }
    }
}

/// Applies the config to the process's jemalloc. Process-wide: the last
/// server started in a process sets the rate for all.
pub(crate) fn configure(cfg: &HeapProfileConfig) -> HeapProfiling {
    // SAFETY: `opt.prof` is documented as a readable bool; a jemalloc
    // built without profiling answers ENOENT, mapped to Unavailable.
    let armed = unsafe { raw::read::<bool>(b"opt.prof\0") }.unwrap_or(false);
    if !armed {
        return HeapProfiling::Unavailable;
    }
    let lg_sample = cfg.sample_bytes.trailing_zeros() as size_t;
    let applied = (|| {
        // SAFETY: `prof.reset` takes a size_t (the new lg_prof_sample) and
        // `prof.active` a bool, as jemalloc's manual documents.
        unsafe {
            raw::write(b"prof.active\0", false)?;
            raw::write(b"prof.reset\0", lg_sample)?;
            if cfg.enabled {
                raw::write(b"prof.active\0", true)?;
            }
        }
        Ok::<_, tikv_jemalloc_ctl::Error>(())
    })();
    match applied {
        Err(e) => {
            tracing::warn!("cannot set up jemalloc heap profiling: {e}");
            HeapProfiling::Unavailable
        }
        Ok(()) if cfg.enabled => {
            tracing::info!(
                "heap profiling on: one sample per {} allocated, served at GET /debug/pprof/heap",
                format_size(cfg.sample_bytes)
            );
            HeapProfiling::Active {
                sample_bytes: cfg.sample_bytes,
            }
        }
        Ok(()) => HeapProfiling::Off,
    }
}

/// Why a dump could not be taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DumpError {
    /// Another dump is in progress.
    #[error("a heap profile is being taken already; retry in a second")]
    Busy,
    /// jemalloc or the conversion failed.
    #[error("the heap profile could not be taken: {0:#}")]
    Failed(anyhow::Error),
}

/// The live heap as pprof (gzipped protobuf, `inuse_space` in bytes,
/// unsymbolized). jemalloc writes the dump to a file and it is parsed back,
/// so the work runs on the blocking pool, and one dump at a time: a second
/// caller gets [`DumpError::Busy`] instead of queueing.
pub(crate) async fn dump_pprof() -> Result<Vec<u8>, DumpError> {
    let ctl = jemalloc_pprof::PROF_CTL.as_ref().ok_or_else(|| {
        DumpError::Failed(anyhow::anyhow!("jemalloc was not started with prof:true"))
    })?;
    let mut guard = ctl.clone().try_lock_owned().map_err(|_| DumpError::Busy)?;
    tokio::task::spawn_blocking(move || guard.dump_pprof())
        .await
        .map_err(|e| DumpError::Failed(e.into()))?
        .map_err(DumpError::Failed)
}
