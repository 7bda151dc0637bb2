//! Resource options as people write them: `--memory 256M`, `--cpu 500m`.

/// Bytes from `1048576`, `512K`, `256M`, `1G` (powers of 1024) or the
/// Kubernetes forms `Ki`, `Mi`, `Gi`.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let bytes = parse_size(s, "--memory")?;
    if bytes < 4 << 20 {
        return Err(format!("--memory {s:?}: at least 4M is needed to start anything"));
    }
    Ok(bytes)
}

/// A size in bytes, with an optional K, M, G or T (powers of 1024, also
/// as KiB, KB…); `what` names the option in errors.
pub fn parse_size(s: &str, what: &str) -> Result<u64, String> {
    let bad = || format!("{what} {s:?}: expected a size such as 256M, 1G or 1048576");
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.to_ascii_uppercase().trim_end_matches('B').trim_end_matches('I') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Thousandths of a CPU from `500m`, `0.5`, `2`.
pub fn parse_cpu(s: &str) -> Result<u64, String> {
    let bad = || format!("--cpu {s:?}: expected CPUs such as 500m, 0.5 or 2");
    let millis = if let Some(m) = s.strip_suffix('m') {
        m.parse::<u64>().map_err(|_| bad())?
    } else {
        let f: f64 = s.parse().map_err(|_| bad())?;
        if !f.is_finite() || f <= 0.0 || f > 1e6 {
            return Err(bad());
        }
        (f * 1000.0).round() as u64
    };
    if millis == 0 {
        return Err(bad());
    }
    Ok(millis)
}

pub fn parse_in_range(s: &str, what: &str, lo: i64, hi: i64) -> Result<i64, String> {
    s.parse::<i64>()
        .ok()
        .filter(|v| (lo..=hi).contains(v))
        .ok_or_else(|| format!("{what} {s:?}: expected a number from {lo} to {hi}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory() {
        assert_eq!(parse_memory("256M").unwrap(), 256 << 20);
        assert_eq!(parse_memory("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_memory("8388608").unwrap(), 8 << 20);
        assert_eq!(parse_memory("64mb").unwrap(), 64 << 20);
        for bad in ["", "M", "12X", "-1M", "1M", "99999999999999999999G"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu() {
        assert_eq!(parse_cpu("500m").unwrap(), 500);
        assert_eq!(parse_cpu("1.5").unwrap(), 1500);
        assert_eq!(parse_cpu("2").unwrap(), 2000);
        for bad in ["", "0", "0m", "-1", "abc", "NaN", "inf"] {
            assert!(parse_cpu(bad).is_err(), "{bad}");
        }
        assert!(parse_in_range("-1001", "--oom-score-adj", -1000, 1000).is_err());
        assert_eq!(parse_in_range("42", "--oom-score-adj", -1000, 1000).unwrap(), 42);
    }
}
