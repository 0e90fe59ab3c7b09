//! Page chrome shared by the inzage report, the DPIA report and the
//! dashboard: one self-contained HTML document (inline CSS, no scripts, no
//! external assets) that prints well, in the style of the rendered Bijlage 3.
//!
//! Every page is built with [`maud`]: the markup is Rust code checked at
//! compile time, and every value spliced into it is HTML-escaped unless it is
//! itself [`Markup`]. No module builds HTML from strings.

use maud::{DOCTYPE, Markup, PreEscaped, html};

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

/// A complete HTML document around `body`.
#[allow(
    clippy::needless_pass_by_value,
    reason = "a page takes the Markup that html! produces, like maud's own API"
)]
pub fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE) "\n"
        html lang="nl" {
            "\n"
            head {
                "\n" meta charset="utf-8"; "\n"
                meta name="viewport" content="width=device-width, initial-scale=1"; "\n"
                title { (title) } "\n"
                // The stylesheet is a constant of this module, not data.
                style { (PreEscaped(CSS)) } "\n"
            }
            "\n"
            body { "\n" (body) "\n" }
            "\n"
        }
        "\n"
    }
    .into_string()
}

/// One series of a bar chart.
pub struct Series<'a> {
    pub label: &'a str,
    pub colour: &'a str,
    pub values: Vec<u64>,
}

/// Where a bar chart's parts go (SVG user units).
struct Frame {
    left: f64,
    top: f64,
    height: f64,
    bar_w: f64,
    width: f64,
    total_h: f64,
    /// The tallest bar's total (at least 1).
    max: u64,
}

impl Frame {
    fn new(labels: &[String], series: &[Series<'_>]) -> Self {
        let n = labels.len().max(1);
        let max = (0..labels.len())
            .map(|i| series.iter().map(|s| value(s, i)).sum::<u64>())
            .max()
            .unwrap_or(0)
            .max(1);
        let (left, top, height) = (40.0_f64, 10.0_f64, 160.0_f64);
        let bar_w = (640.0 / n as f64).clamp(4.0, 40.0);
        Self {
            left,
            top,
            height,
            bar_w,
            width: left + bar_w * n as f64 + 20.0,
            total_h: top + height + 60.0 + 18.0 * series.len() as f64,
            max,
        }
    }

    /// The x axis' baseline.
    fn bottom(&self) -> f64 {
        self.top + self.height
    }
}

fn value(s: &Series<'_>, i: usize) -> u64 {
    s.values.get(i).copied().unwrap_or(0)
}

/// A stacked bar chart as inline SVG: one bar per label (x axis), one
/// coloured segment per series, with a legend and a `<title>` per segment
/// (shown on hover and read by screen readers).
pub fn bar_chart(title: &str, labels: &[String], series: &[Series<'_>]) -> Markup {
    let f = Frame::new(labels, series);
    let view_box = format!("0 0 {:.0} {:.0}", f.width, f.total_h);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox=(view_box)
            width=(format_args!("{:.0}", f.width)) height=(format_args!("{:.0}", f.total_h))
            font-size="10" font-family="sans-serif" {
            title { (title) }
            (axes(&f))
            (bars(&f, labels, series))
            (legend(&f, series))
        }
    }
}

/// The y and x axes, with the maximum and zero.
fn axes(f: &Frame) -> Markup {
    html! {
        line x1=(f.left) y1=(f.top) x2=(f.left) y2=(f.bottom()) stroke="#333" {}
        line x1=(f.left) y1=(f.bottom()) x2=(format_args!("{:.0}", f.width - 10.0)) y2=(f.bottom())
            stroke="#333" {}
        text x=(f.left - 4.0) y=(f.top + 8.0) text-anchor="end" { (f.max) }
        text x=(f.left - 4.0) y=(f.bottom()) text-anchor="end" { "0" }
    }
}

/// One stacked bar per label, and every `step`-th label under the axis.
fn bars(f: &Frame, labels: &[String], series: &[Series<'_>]) -> Markup {
    let step = labels.len().div_ceil(12).max(1);
    html! {
        @for (i, label) in labels.iter().enumerate() {
            @let x = f.left + f.bar_w * i as f64 + 1.0;
            (bar(f, x, i, label, series))
            @if i % step == 0 {
                @let (lx, ly) = (x + f.bar_w / 2.0, f.bottom() + 10.0);
                text x=(format_args!("{lx:.1}")) y=(format_args!("{ly:.1}"))
                    transform=(format_args!("rotate(60 {lx:.1} {ly:.1})")) { (label) }
            }
        }
    }
}

/// The segments of bar `i` at `x`, bottom to top in series order.
fn bar(f: &Frame, x: f64, i: usize, label: &str, series: &[Series<'_>]) -> Markup {
    let mut y = f.bottom();
    let mut segments = Vec::new();
    for s in series {
        let v = value(s, i);
        if v == 0 {
            continue;
        }
        let h = f.height * v as f64 / f.max as f64;
        y -= h;
        segments.push((s, v, y, h));
    }
    let width = format!("{:.1}", (f.bar_w - 2.0).max(1.0));
    html! {
        @for (s, v, y, h) in segments {
            rect x=(format_args!("{x:.1}")) y=(format_args!("{y:.1}")) width=(width)
                height=(format_args!("{h:.1}")) fill=(s.colour) {
                title { (label) ": " (s.label) " " (v) }
            }
        }
    }
}

/// A coloured square and the name of each series.
fn legend(f: &Frame, series: &[Series<'_>]) -> Markup {
    html! {
        @for (j, s) in series.iter().enumerate() {
            @let y = f.bottom() + 60.0 + 18.0 * j as f64;
            rect x=(f.left) y=(format_args!("{:.0}", y - 10.0)) width="12" height="12"
                fill=(s.colour) {}
            text x=(f.left + 18.0) y=(format_args!("{y:.0}")) { (s.label) }
        }
    }
}

/// Hostile text for the escaping tests of every page.
#[cfg(test)]
pub(crate) mod hostile {
    /// Markup, both quotes and an ampersand, as a name or label could hold.
    pub const TEXT: &str = "<script>alert(1)</script>\"'&";

    /// [`TEXT`] as it must appear in a page: as text, never as markup, and
    /// unable to end a quoted attribute.
    pub const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;";

    /// Asserts that `page` shows [`TEXT`] at least `at_least` times and
    /// every time escaped, and holds no script element at all.
    pub fn assert_escaped(page: &str, at_least: usize) {
        assert!(!page.contains("<script"), "unescaped markup in\n{page}");
        let shown = page.matches("alert(1)").count();
        assert!(shown >= at_least, "{shown} < {at_least} in\n{page}");
        assert_eq!(
            page.matches(ESCAPED).count(),
            shown,
            "not every occurrence escaped in\n{page}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_title_and_body_text_are_escaped() {
        let body = html! { p { (hostile::TEXT) } };
        let page = page(hostile::TEXT, body);
        hostile::assert_escaped(&page, 2);
        assert!(page.contains(&format!("<title>{}</title>", hostile::ESCAPED)));
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"nl\">\n<head>\n"));
        assert!(page.ends_with("\n</body>\n</html>\n"));
    }

    #[test]
    fn chart_titles_labels_and_series_are_escaped() {
        let labels = vec![hostile::TEXT.to_owned(), "2026-11-10".to_owned()];
        let series = [Series {
            label: hostile::TEXT,
            colour: "#2e7d32",
            values: vec![3, 1],
        }];
        let svg = bar_chart(hostile::TEXT, &labels, &series).into_string();
        // Chart title, the first bar's tooltip (label and series), its axis
        // label, the second bar's tooltip (series) and the legend.
        hostile::assert_escaped(&svg, 6);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\""));
        assert_eq!(
            svg.matches("<rect").count(),
            3,
            "two bars and a legend entry"
        );
        assert!(svg.contains("<text x=\"36\" y=\"18\" text-anchor=\"end\">3</text>"));
    }
}
