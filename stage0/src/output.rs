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
    let mut out = std::io::stdout().lock();
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
    Ok(())
}

pub fn json(v: &serde_json::Value) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)
}

/// An RFC 3339 timestamp shortened to seconds for tables.
pub fn short_time(t: Option<&str>) -> String {
    match t.and_then(skiff_pods::time::parse_rfc3339) {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string().replace('T', " ").replace('Z', ""),
        None => "-".into(),
    }
}
