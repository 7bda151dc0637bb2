//! Printing for scripts and people: aligned tables or JSON on stdout,
//! nothing else there.

use std::io::Write;

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

// `--format` and `--no-legend`, for every command that prints a table.
#[derive(clap::Args, Debug)]
pub struct TableArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Do not print the header line.
    #[arg(long)]
    pub no_legend: bool,
}

/// Prints rows under a header (unless `no_legend`), columns separated by
/// at least two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>], no_legend: bool) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Stdout is line-buffered: one write for the whole table, not a line.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = |cells: Vec<&str>| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    if !no_legend {
        line(headers.to_vec())?;
    }
    for r in rows {
        line(r.iter().map(String::as_str).collect())?;
    }
    out.flush()
}

pub fn json(v: &impl serde::Serialize) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    out.flush()
}

/// An RFC 3339 timestamp shortened to seconds for tables.
pub fn short_time(t: Option<&str>) -> String {
    // skiff's own timestamps (UTC, `Z`) are cut, not parsed and formatted
    // again: `list` shows two per pod.
    if let Some(cut) = t.and_then(utc_seconds) {
        return cut;
    }
    match t.and_then(skiff_pods::time::parse_rfc3339) {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string().replace('T', " ").replace('Z', ""),
        None => "-".into(),
    }
}

/// `2026-01-02T03:04:05[.fraction]Z` as `2026-01-02 03:04:05`, if `t` has
/// exactly that shape.
fn utc_seconds(t: &str) -> Option<String> {
    let b = t.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let fits = b.len() >= 20
        && b.iter().zip(shape).all(|(c, s)| if *s == b'd' { c.is_ascii_digit() } else { c == s })
        && b[b.len() - 1] == b'Z'
        && (b.len() == 20 || (b[19] == b'.' && b[20..b.len() - 1].iter().all(u8::is_ascii_digit)));
    fits.then(|| format!("{} {}", &t[..10], &t[11..19]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_times() {
        assert_eq!(short_time(Some("2026-12-06T04:51:27.333380432Z")), "2026-12-06 04:51:27");
        assert_eq!(short_time(Some("2026-12-06T04:51:27Z")), "2026-12-06 04:51:27");
        // Other shapes go through the parser: an offset, or nonsense.
        assert_eq!(short_time(Some("2026-12-06T04:51:27+00:00")), "2026-12-06 04:51:27");
        assert_eq!(short_time(Some("2026-12-06T04:51:27.x3Z")), "-");
        assert_eq!(short_time(Some("not a time")), "-");
        assert_eq!(short_time(None), "-");
    }
}
