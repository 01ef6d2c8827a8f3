//! samples.csv: the memory and cache time series, one row per sample
//! interval, flushed row by row (docs/run-folder.md).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::RunFileError;
use crate::table::{complete_rows, Table};

/// samples.csv's header, in the documented order. Readers look columns up
/// by name, so columns may be appended later.
pub const SAMPLES_HEADER: [&str; 15] = [
    "t_s",
    "rss_bytes",
    "hwm_bytes",
    "cgroup_bytes",
    "allocated_bytes",
    "active_bytes",
    "resident_bytes",
    "sessions",
    "evictions",
    "rps",
    "errors",
    "logins",
    "capacity",
    "source",
    "cgroup_working_set_bytes",
];

/// Where a row's server memory (`rss_bytes`) came from: the `source`
/// column. Files written before the column read as `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemorySource {
    /// VmRSS of a local PID (/proc/PID/status).
    Proc,
    /// A series of the service's /metrics (`process_resident_memory_bytes`,
    /// or the one `--memory-metric` selects).
    Metrics,
    /// A Prometheus server's query API (`--memory-query`).
    Prometheus,
    /// A cgroup's usage less its inactive file cache (`--cgroup`,
    /// `--container`), as `docker stats` shows it.
    Cgroup,
}

impl MemorySource {
    pub const ALL: [MemorySource; 4] = [
        MemorySource::Proc,
        MemorySource::Metrics,
        MemorySource::Prometheus,
        MemorySource::Cgroup,
    ];

    /// The word written in samples.csv and summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            MemorySource::Proc => "proc",
            MemorySource::Metrics => "metrics",
            MemorySource::Prometheus => "prometheus",
            MemorySource::Cgroup => "cgroup",
        }
    }

    /// The word as written; `None` for anything else.
    pub fn parse(text: &str) -> Option<MemorySource> {
        MemorySource::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What a server-memory series holds, for every sentence and label that
/// names it: "RSS" when each of its samples came from /proc (or the file
/// does not say), else "server memory" — a cgroup's working set, a
/// Prometheus query or a chosen /metrics series is not the process's RSS.
pub fn memory_noun(sources: impl IntoIterator<Item = MemorySource>) -> &'static str {
    if sources.into_iter().all(|s| s == MemorySource::Proc) {
        "RSS"
    } else {
        "server memory"
    }
}

impl std::fmt::Display for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of samples.csv; `None` is a blank cell (source absent, scrape
/// failed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleRow {
    /// Seconds since load start.
    pub t_s: f64,
    pub rss_bytes: Option<u64>,
    pub hwm_bytes: Option<u64>,
    pub cgroup_bytes: Option<u64>,
    pub allocated_bytes: Option<u64>,
    pub active_bytes: Option<u64>,
    pub resident_bytes: Option<u64>,
    pub sessions: Option<u64>,
    pub evictions: Option<u64>,
    /// Requests completed per second in the interval ending at `t_s`.
    pub rps: Option<f64>,
    /// Requests failed in that interval.
    pub errors: Option<u64>,
    /// The server's successful logins so far (cumulative).
    pub logins: Option<u64>,
    /// The session capacity the service advertises
    /// (`clw_session_cache_max_size`): a cache still filling toward it is
    /// not yet judged a leak.
    pub capacity: Option<u64>,
    /// Where `rss_bytes` came from; `None` when it is blank, and in files
    /// written before the column existed.
    pub source: Option<MemorySource>,
    /// The server's memory cgroup's usage less its inactive file cache
    /// (v2 `memory.current` − `inactive_file`, v1 `memory.usage_in_bytes`
    /// − `total_inactive_file`): what the kernel charges against the limit
    /// and OOM-kills on. Blank without a cgroup, or without its memory.stat.
    pub cgroup_working_set_bytes: Option<u64>,
}

/// samples.csv being written.
pub struct SamplesWriter {
    path: PathBuf,
    out: csv::Writer<File>,
}

impl SamplesWriter {
    /// Creates the file and writes (and flushes) the header.
    pub fn create(path: &Path) -> Result<SamplesWriter, RunFileError> {
        let file = File::create(path).map_err(RunFileError::write(path))?;
        let mut out = csv::Writer::from_writer(file);
        out.write_record(SAMPLES_HEADER)
            .map_err(|e| RunFileError::write(path)(e.into()))?;
        out.flush().map_err(RunFileError::write(path))?;
        Ok(SamplesWriter {
            path: path.to_path_buf(),
            out,
        })
    }

    /// Appends one row and flushes it, so a kill loses at most this row.
    pub fn write(&mut self, s: &SampleRow) -> Result<(), RunFileError> {
        let int = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let record = [
            format!("{:.3}", s.t_s),
            int(s.rss_bytes),
            int(s.hwm_bytes),
            int(s.cgroup_bytes),
            int(s.allocated_bytes),
            int(s.active_bytes),
            int(s.resident_bytes),
            int(s.sessions),
            int(s.evictions),
            s.rps.map(|r| format!("{r:.2}")).unwrap_or_default(),
            int(s.errors),
            int(s.logins),
            int(s.capacity),
            s.source
                .map(MemorySource::as_str)
                .unwrap_or_default()
                .to_string(),
            int(s.cgroup_working_set_bytes),
        ];
        self.out
            .write_record(&record)
            .map_err(|e| RunFileError::write(&self.path)(e.into()))?;
        self.out.flush().map_err(RunFileError::write(&self.path))
    }
}

/// samples.csv as read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplesFile {
    pub rows: Vec<SampleRow>,
    /// The final row was cut off mid-write (no trailing newline) and was
    /// dropped.
    pub truncated_tail: bool,
    /// Lines whose `t_s` was blank: a sample that cannot be placed in time,
    /// dropped.
    pub blank_t_s_lines: Vec<u64>,
}

/// Reads samples.csv, looking columns up by name: a missing column reads as
/// all blank, except `t_s`, which every row needs.
pub fn read_samples(path: &Path) -> Result<SamplesFile, RunFileError> {
    let bytes = crate::bounded::read_table(path)?;
    parse_samples(&bytes, path)
}

/// [`read_samples`] on bytes already in memory; `path` names them in errors.
pub fn parse_samples(bytes: &[u8], path: &Path) -> Result<SamplesFile, RunFileError> {
    let (complete, truncated_tail) = complete_rows(bytes);
    let mut table = Table::new(complete, path)?;
    let t_col = table.require("t_s")?;
    let source_col = table.column("source");
    let mut rows = Vec::new();
    let mut blank_t_s_lines = Vec::new();
    while let Some(record) = table.next_record()? {
        let Some(t_s) = table.float(&record, Some(t_col), "t_s")? else {
            blank_t_s_lines.push(record.position().map_or(0, |p| p.line()));
            continue;
        };
        let int = |name: &'static str| table.uint(&record, name);
        rows.push(SampleRow {
            t_s,
            rss_bytes: int("rss_bytes")?,
            hwm_bytes: int("hwm_bytes")?,
            cgroup_bytes: int("cgroup_bytes")?,
            allocated_bytes: int("allocated_bytes")?,
            active_bytes: int("active_bytes")?,
            resident_bytes: int("resident_bytes")?,
            sessions: int("sessions")?,
            evictions: int("evictions")?,
            rps: table.float(&record, table.column("rps"), "rps")?,
            errors: int("errors")?,
            logins: int("logins")?,
            capacity: int("capacity")?,
            source: match table.text(&record, source_col) {
                "" => None,
                word => Some(MemorySource::parse(word).ok_or_else(|| {
                    table.error(
                        &record,
                        format!(
                            "column `source`: `{word}` is not one of proc, metrics, prometheus, cgroup"
                        ),
                    )
                })?),
            },
            cgroup_working_set_bytes: int("cgroup_working_set_bytes")?,
        });
    }
    Ok(SamplesFile {
        rows,
        truncated_tail,
        blank_t_s_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> String {
        SAMPLES_HEADER.join(",") + "\n"
    }

    #[test]
    fn writer_output_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        let mut w = SamplesWriter::create(&path).unwrap();
        let row = SampleRow {
            t_s: 0.25,
            rss_bytes: Some(1000),
            hwm_bytes: Some(1200),
            rps: Some(12.5),
            errors: Some(0),
            logins: Some(3),
            source: Some(MemorySource::Proc),
            ..SampleRow::default()
        };
        w.write(&row).unwrap();
        w.write(&SampleRow {
            t_s: 0.5,
            ..SampleRow::default()
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "{}0.250,1000,1200,,,,,,,12.50,0,3,,proc,\n0.500,,,,,,,,,,,,,,\n",
                header()
            )
        );
        let back = read_samples(&path).unwrap();
        assert_eq!(back.rows[0], row);
        assert!(!back.truncated_tail);
    }

    #[test]
    fn reordered_missing_and_extra_columns() {
        let s = parse_samples(
            b"logins,t_s,rss_bytes,extra\n5,1.0,42,x\n",
            Path::new("s.csv"),
        )
        .unwrap();
        let r = &s.rows[0];
        assert_eq!((r.t_s, r.rss_bytes, r.logins), (1.0, Some(42), Some(5)));
        assert_eq!(r.allocated_bytes, None);
    }

    #[test]
    fn short_row_in_the_middle_is_an_error_with_its_line_blank_t_s_is_skipped() {
        let err = parse_samples(b"t_s,rss_bytes\n0.0,1\n0.5\n1.0,3\n", Path::new("s.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.csv:3:"), "{err}");
        let s = parse_samples(b"t_s,rss_bytes\n0.0,1\n,2\n1.0,3\n", Path::new("s.csv")).unwrap();
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.blank_t_s_lines, [3]);
    }

    /// samples.csv before the `capacity` column: older run folders still read.
    const TWELVE_COLUMNS: &str = "t_s,rss_bytes,hwm_bytes,cgroup_bytes,allocated_bytes,active_bytes,resident_bytes,sessions,evictions,rps,errors,logins\n";

    #[test]
    fn truncated_final_line_is_dropped_and_reported() {
        let text = format!("{TWELVE_COLUMNS}0.250,1000,1200,,500,,,3,0,10.0,0,3\n0.500,10");
        let s = parse_samples(text.as_bytes(), Path::new("s.csv")).unwrap();
        assert_eq!(s.rows.len(), 1);
        assert!(s.truncated_tail);
    }

    #[test]
    fn every_source_reads_back_and_files_without_the_column_read_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        let mut w = SamplesWriter::create(&path).unwrap();
        let rows: Vec<SampleRow> = MemorySource::ALL
            .into_iter()
            .enumerate()
            .map(|(i, source)| SampleRow {
                t_s: i as f64,
                rss_bytes: Some(1 << 20),
                source: Some(source),
                ..SampleRow::default()
            })
            .collect();
        for row in &rows {
            w.write(row).unwrap();
        }
        assert_eq!(read_samples(&path).unwrap().rows, rows);
        let old = format!("{TWELVE_COLUMNS}0.250,1000,1200,,500,,,3,0,10.0,0,3\n");
        let s = parse_samples(old.as_bytes(), Path::new("s.csv")).unwrap();
        assert_eq!((s.rows[0].rss_bytes, s.rows[0].source), (Some(1000), None));
        let err = parse_samples(b"t_s,source\n0.0,docker\n", Path::new("s.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s.csv:2:") && err.contains("`docker`"),
            "{err}"
        );
    }

    #[test]
    fn bad_cell_names_file_line_and_column() {
        let text = format!("{TWELVE_COLUMNS}0.250,lots,,,,,,,,,,\n");
        let err = parse_samples(text.as_bytes(), Path::new("run/samples.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run/samples.csv:2:") && err.contains("rss_bytes"),
            "{err}"
        );
        let err = parse_samples(b"rss_bytes\n1\n", Path::new("s.csv")).unwrap_err();
        assert!(matches!(
            err,
            RunFileError::MissingColumn { column: "t_s", .. }
        ));
    }
}
