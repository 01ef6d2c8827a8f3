//! Judges a headless-browser screenshot of a report (`make report-check`):
//! fails on a blank page (nearly one colour), a page with too little drawn
//! on it, or, with `--banner leak|bounded|inconclusive`, a page whose
//! verdict banner colour is missing from the top of the page (CSS broken or
//! wrong verdict).
//!
//! usage: screenshot_check SHOT.png [--banner leak|bounded|inconclusive]

use std::collections::HashMap;
use std::process::ExitCode;

/// The banner colours of templates/style.css.
fn banner_rgb(verdict: &str) -> Option<[u8; 3]> {
    match verdict {
        "leak" => Some([0xc6, 0x28, 0x28]),
        "bounded" => Some([0x2e, 0x7d, 0x32]),
        "inconclusive" => Some([0x61, 0x61, 0x61]),
        _ => None,
    }
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12)
}

fn check(path: &str, banner: Option<&str>) -> Result<String, String> {
    let img = image::open(path)
        .map_err(|e| format!("{path}: not a readable PNG: {e}"))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    if w < 800 || h < 600 {
        return Err(format!(
            "{path}: {w}x{h} is too small for a page screenshot"
        ));
    }
    let mut exact: HashMap<[u8; 3], u64> = HashMap::new();
    let mut counts: HashMap<[u8; 3], u64> = HashMap::new();
    for p in img.pixels() {
        *exact.entry(p.0).or_default() += 1;
        // Quantised, so anti-aliasing alone does not make a page look busy.
        *counts
            .entry([p[0] & 0xf0, p[1] & 0xf0, p[2] & 0xf0])
            .or_default() += 1;
    }
    let total = u64::from(w) * u64::from(h);
    let dominant = exact.values().copied().max().unwrap_or(0);
    let share = dominant as f64 / total as f64;
    if share > 0.97 {
        return Err(format!(
            "{path}: blank page ({:.1}% of pixels are one colour)",
            share * 100.0
        ));
    }
    if counts.len() < 40 {
        return Err(format!(
            "{path}: only {} colours: nothing rendered",
            counts.len()
        ));
    }
    let mut banner_share = None;
    if let Some(verdict) = banner {
        let want = banner_rgb(verdict).ok_or_else(|| format!("unknown banner `{verdict}`"))?;
        let top = h.min(400);
        let hits = (0..top)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| close(img.get_pixel(x, y).0, want))
            .count();
        let s = hits as f64 / f64::from(w * top);
        if s < 0.03 {
            return Err(format!(
                "{path}: the {verdict} banner colour covers {:.2}% of the top of the page: banner missing",
                s * 100.0
            ));
        }
        banner_share = Some(s);
    }
    Ok(format!(
        "{path}: ok ({w}x{h}, {} colours, largest {:.0}%{})",
        counts.len(),
        share * 100.0,
        banner_share
            .map(|s| format!(", banner {:.0}% of the top", s * 100.0))
            .unwrap_or_default()
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, banner) = match args.as_slice() {
        [p] => (p.as_str(), None),
        [p, flag, b] if flag == "--banner" => (p.as_str(), Some(b.as_str())),
        _ => {
            eprintln!("usage: screenshot_check SHOT.png [--banner leak|bounded|inconclusive]");
            return ExitCode::from(2);
        }
    };
    match check(path, banner) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("report-check FAILED: {msg}");
            ExitCode::FAILURE
        }
    }
}
