//! What the benchmarks' plots share with the CLI's: its bundled font, so
//! that a plot draws its text on a machine with no fonts installed.

use std::sync::Once;

use plotters::style::FontStyle;

const FONT: &[u8] = include_bytes!("../../service/cli/assets/DejaVuSans.ttf");

/// Registers the bundled font as `sans-serif` (once).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is valid; if it were not, plotters would draw no
        // text rather than fail.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}
