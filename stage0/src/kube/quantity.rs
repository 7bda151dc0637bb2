//! Kubernetes quantities (`64Mi`, `1G`, `500m`, `0.5`) as skiff's options
//! take them: bytes, and thousandths of a CPU.

/// Bytes of a memory quantity: binary suffixes (Ki…Ei), decimal ones
/// (k, M, G, T, P, E), an exponent (`1e9`) or none.
pub fn bytes(q: &str) -> Result<u64, String> {
    let bad = || format!("memory quantity {q:?}: expected e.g. 64Mi, 1G or 1048576");
    let t = q.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse::<i32>().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    let b = (n * mult).ceil();
    if !b.is_finite() || b < 1.0 || b > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(b as u64)
}

/// Thousandths of a CPU: `500m`, `0.5`, `2`.
pub fn millicpus(q: &str) -> Result<u64, String> {
    crate::pod::resources::parse_cpu(q.trim()).map_err(|_| format!("cpu quantity {q:?}: expected e.g. 500m, 0.5 or 2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_as_kubernetes_reads_it() {
        assert_eq!(bytes("64Mi"), Ok(64 << 20));
        assert_eq!(bytes("1G"), Ok(1_000_000_000));
        assert_eq!(bytes("128974848"), Ok(128_974_848));
        assert_eq!(bytes("129e6"), Ok(129_000_000));
        assert_eq!(bytes("1.5Gi"), Ok(3 << 29));
        for bad in ["", "Mi", "-1Mi", "1Xi", "1e999", "0", "1e"] {
            assert!(bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(millicpus("250m"), Ok(250));
        assert_eq!(millicpus("1.5"), Ok(1500));
        assert!(millicpus("x").is_err());
    }
}
