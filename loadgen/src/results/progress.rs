//! Live progress on stderr: an indicatif bar on a terminal, plain periodic
//! lines otherwise (CI logs), nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::load::stages::Stages;
use crate::results::collector::Live;

/// How often a line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Where the progress goes.
pub(crate) enum Progress {
    Bar(ProgressBar),
    Lines { last: Instant },
    Quiet,
}

impl Progress {
    pub(crate) fn new(quiet: bool, duration: Duration) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(
                Some(duration.as_secs().max(1)),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            Progress::Bar(bar)
        } else {
            Progress::Lines {
                last: Instant::now(),
            }
        }
    }

    /// Show the state at `elapsed` into the load; `rss` is the server's
    /// latest RSS when the sampler knows it, `stage` the current stage in
    /// words (a load with stages).
    pub(crate) fn update(
        &mut self,
        elapsed: Duration,
        live: &Live,
        rss: Option<u64>,
        stage: Option<String>,
    ) {
        let line = match stage {
            Some(stage) => format!("{stage}  {}", format_line(live, rss)),
            None => format_line(live, rss),
        };
        match self {
            Progress::Bar(bar) => {
                bar.set_position(elapsed.as_secs());
                bar.set_message(line);
            }
            Progress::Lines { last } => {
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    eprintln!("[{:>6.1}s] {line}", elapsed.as_secs_f64());
                }
            }
            Progress::Quiet => {}
        }
    }

    /// A message that must not be overwritten by the bar (server died...).
    pub(crate) fn println(&self, message: &str) {
        match self {
            Progress::Bar(bar) => bar.println(message),
            _ => eprintln!("{message}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn format_line(live: &Live, rss: Option<u64>) -> String {
    let p99 = live
        .p99_ms
        .map(|p| format!("{p:.2} ms"))
        .unwrap_or_else(|| "-".into());
    let rss = rss
        .map(|b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "-".into());
    format!(
        "{:.0} req/s  p99 {p99}  requests {}  errors {}  server RSS {rss}",
        live.rps, live.requests, live.errors
    )
}

/// The stage running `t` seconds into the load, in words: `stage 2/4
/// 10→50 users (37 running)`, `stage 3/4 hold 50 users (50 running)`, or
/// in the open model `stage 1/2 0→200/s (now 80/s)`.
pub(crate) fn stage_label(stages: &Stages, t: f64, open: bool, running: u32) -> String {
    let i = stages.index_at(t);
    let Some(s) = stages.spans().get(i) else {
        return String::new();
    };
    let unit = if open { "/s" } else { " users" };
    let level = if s.from == s.target {
        format!("hold {}{unit}", s.target)
    } else {
        format!("{}→{}{unit}", s.from, s.target)
    };
    let now = if open {
        format!("now {:.0}/s", stages.level_at(t))
    } else {
        format!("{running} running")
    };
    format!("stage {}/{} {level} ({now})", i + 1, stages.spans().len())
}

/// Update `progress` every 250 ms until `stop` fires; returns it so the
/// caller can clear the bar before printing the summary. With `stages`
/// (and whether the model is open), the line starts with the current stage.
pub(crate) fn spawn_ticker(
    mut progress: Progress,
    t0: Instant,
    live: Arc<Mutex<Live>>,
    rss: impl Fn() -> Option<u64> + Send + 'static,
    stages: Option<(Stages, bool)>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<Progress> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop => return progress,
            }
            let snapshot = live.lock().expect("live lock").clone();
            let elapsed = t0.elapsed();
            let stage = stages.as_ref().map(|(stages, open)| {
                stage_label(stages, elapsed.as_secs_f64(), *open, snapshot.users)
            });
            progress.update(elapsed, &snapshot, rss(), stage);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_unknowns_as_dashes() {
        let live = Live {
            requests: 10,
            errors: 1,
            rps: 5.0,
            p99_ms: None,
            users: 4,
        };
        let line = format_line(&live, None);
        assert!(
            line.contains("p99 -") && line.contains("RSS -") && line.contains("errors 1"),
            "{line}"
        );
        let line = format_line(&live, Some(3 << 20));
        assert!(line.contains("3.0 MiB"), "{line}");
    }

    #[test]
    fn the_stage_label_names_the_stage_and_the_level() {
        let list =
            [(10, 10.0), (20, 10.0), (5, 0.0)].map(|(secs, target)| crate::scenario::Stage {
                duration: Duration::from_secs(secs),
                target,
            });
        let stages = Stages::new(&list);
        assert_eq!(
            stage_label(&stages, 4.0, false, 4),
            "stage 1/3 0→10 users (4 running)"
        );
        assert_eq!(
            stage_label(&stages, 12.0, false, 10),
            "stage 2/3 hold 10 users (10 running)"
        );
        assert_eq!(
            stage_label(&stages, 99.0, true, 3),
            "stage 3/3 10→0/s (now 0/s)"
        );
        assert_eq!(
            stage_label(&stages, 5.0, true, 3),
            "stage 1/3 0→10/s (now 5/s)"
        );
    }
}
