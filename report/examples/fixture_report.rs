//! Writes the synthetic run folders of `clw_report::fixtures` under OUT_DIR
//! (default `target/report-fixtures`), renders each, a comparison of the
//! leak against the bounded run, and the index. Used by `make report-check`
//! and handy to look at the report without running a load test.

use std::path::{Path, PathBuf};

/// Writes one synthetic run folder.
type Fixture = fn(&Path) -> std::io::Result<()>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/report-fixtures".into()),
    );
    let fixtures: [(&str, Fixture); 4] = [
        ("leak-repro", clw_report::fixtures::leak_oom),
        ("fix-verify", clw_report::fixtures::bounded_sawtooth),
        ("partial", clw_report::fixtures::partial_samples),
        ("no-server", clw_report::fixtures::no_server),
    ];
    for (name, write) in fixtures {
        let dir = out.join(name);
        write(&dir)?;
        let rendered = clw_report::render_run(&dir)?;
        println!("{}", rendered.page.display());
        for n in &rendered.notices {
            println!("  notice: {n}");
        }
    }
    let compare = clw_report::render_comparison(
        &[out.join("leak-repro"), out.join("fix-verify")],
        &out.join("compare"),
    )?;
    println!("{}", compare.page.display());
    println!("{}", clw_report::render_index(&out)?.display());
    Ok(())
}
