//! Pod identifiers: random (version 4) UUIDs in their usual text form.

use std::fmt::Write;

/// A new random UUID, e.g. `3f2b9c1e-8d4a-4e2b-9f6a-1c2d3e4f5a6b`.
pub fn new_v4() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    let mut filled = 0;
    while filled < b.len() {
        filled += rustix::rand::getrandom(&mut b[filled..], rustix::rand::GetRandomFlags::empty())?;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    Ok(s)
}

/// True when `s` has the exact shape of a UUID (so it is safe as a path name).
pub fn is_valid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

/// True when `s` may be a prefix of a UUID (used to match user input).
pub fn is_valid_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 36 && s.chars().all(|c| c == '-' || (c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_uuids_are_valid_and_distinct() {
        let a = new_v4().unwrap();
        let b = new_v4().unwrap();
        assert!(is_valid(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn hostile_names_are_not_uuids() {
        for s in ["", "..", "../../etc/passwd", "3F2B9C1E-8D4A-4E2B-9F6A-1C2D3E4F5A6B", "a/b"] {
            assert!(!is_valid(s), "{s}");
        }
        assert!(!is_valid_prefix("../x"));
        assert!(is_valid_prefix("3f2b"));
    }
}
