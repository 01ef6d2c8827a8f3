//! The embedded font: DejaVu Sans (Bitstream Vera licence, assets/
//! LICENSE-DejaVu.txt) so that chart text lays out and PNGs render on a
//! machine with no system fonts at all.

use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the font as plotters' "sans-serif" once per process.
pub(crate) fn ensure() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS)
                .map_err(|_| "the embedded DejaVu Sans font did not parse".to_string())
        })
        .clone()
}
