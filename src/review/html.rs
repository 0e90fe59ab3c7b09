//! Page chrome shared by the inzage report, the DPIA report and the
//! dashboard: one self-contained HTML document (inline CSS, no scripts, no
//! external assets) that prints well, in the style of the rendered Bijlage 3.

use std::fmt::Write as _;

pub use crate::policy::tools::render::escape_html as esc;

pub const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: "Segoe UI", "Helvetica Neue", Arial, sans-serif; font-size: 11pt; line-height: 1.45; color: #1a1a1a; max-width: 64rem; margin: 2rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.3rem; }
h2 { font-size: 1.3rem; border-bottom: 2px solid #1a1a1a; padding-bottom: 0.2rem; margin-top: 2.2rem; }
h3 { font-size: 1.1rem; margin-top: 1.5rem; }
code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 0.9em; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #999; padding: 0.25rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num, th.num { text-align: right; }
tr.bijzonder td { background: #fff3cd; }
tr.geweigerd td { background: #f3f3f3; color: #444; }
.markering { font-weight: 700; }
.meta { color: #444; }
.ok { color: #14632d; font-weight: 700; }
.fout { color: #a4161a; font-weight: 700; }
.let-op { border-left: 4px solid #b8860b; background: #fff8e1; padding: 0.4rem 0.8rem; }
dl.kenmerken { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 0.8rem; margin: 0.4rem 0; }
dl.kenmerken dt { font-weight: 600; }
dl.kenmerken dd { margin: 0; }
section.verstrekking { border: 1px solid #999; padding: 0.3rem 0.9rem 0.6rem; margin: 0.8rem 0; }
nav.menu a { margin-right: 1rem; }
form.zoeken { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); gap: 0.4rem 1rem; margin: 0.8rem 0; }
form.zoeken label { display: flex; flex-direction: column; font-size: 0.9em; }
svg { max-width: 100%; height: auto; }
footer { margin-top: 3rem; border-top: 1px solid #999; font-size: 0.9em; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  a { color: inherit; text-decoration: none; }
  nav.menu, form { display: none; }
  section.verstrekking, section.overleg, tr { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  thead { display: table-header-group; }
  th, tr.bijzonder td, tr.geweigerd td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// A complete HTML document around `body` (already escaped markup).
pub fn page(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + CSS.len() + 512);
    out.push_str("<!DOCTYPE html>\n<html lang=\"nl\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", esc(title));
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    out.push_str(body);
    out.push_str("\n</body>\n</html>\n");
    out
}

/// One series of a bar chart.
pub struct Series<'a> {
    pub label: &'a str,
    pub colour: &'a str,
    pub values: Vec<u64>,
}

/// A stacked bar chart as inline SVG: one bar per label (x axis), one
/// coloured segment per series, with a legend and a `<title>` per segment
/// (shown on hover and read by screen readers).
pub fn bar_chart(title: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let n = labels.len().max(1);
    let totals: Vec<u64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let (left, top, height) = (40.0_f64, 10.0_f64, 160.0_f64);
    let bar_w = (640.0 / n as f64).clamp(4.0, 40.0);
    let width = left + bar_w * n as f64 + 20.0;
    let total_h = top + height + 60.0 + 18.0 * series.len() as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {width:.0} {total_h:.0}\" width=\"{width:.0}\" height=\"{total_h:.0}\" font-size=\"10\" font-family=\"sans-serif\"><title>{}</title>",
        esc(title)
    );
    // Axis with the maximum and zero.
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#333\"/><line x1=\"{left}\" y1=\"{0}\" x2=\"{1:.0}\" y2=\"{0}\" stroke=\"#333\"/>",
        top + height,
        width - 10.0
    );
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text><text x=\"{0}\" y=\"{}\" text-anchor=\"end\">0</text>",
        left - 4.0,
        top + 8.0,
        top + height
    );
    let step = labels.len().div_ceil(12).max(1);
    for (i, label) in labels.iter().enumerate() {
        let x = left + bar_w * i as f64 + 1.0;
        let mut y = top + height;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = height * v as f64 / max as f64;
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}: {} {v}</title></rect>",
                (bar_w - 2.0).max(1.0),
                s.colour,
                esc(label),
                esc(s.label)
            );
        }
        if i % step == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" transform=\"rotate(60 {0:.1} {1:.1})\">{}</text>",
                x + bar_w / 2.0,
                top + height + 10.0,
                esc(label)
            );
        }
    }
    for (j, s) in series.iter().enumerate() {
        let y = top + height + 60.0 + 18.0 * j as f64;
        let _ = write!(
            out,
            "<rect x=\"{left}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{:.0}\">{}</text>",
            y - 10.0,
            s.colour,
            left + 18.0,
            y,
            esc(s.label)
        );
    }
    out.push_str("</svg>");
    out
}
