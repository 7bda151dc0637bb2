//! sha256 digests: parsing user and image input, and hashing streams.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, String> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(format!("invalid digest {s:?}: expected sha256:<hex>"));
        };
        if alg != "sha256" {
            return Err(format!("unsupported digest algorithm {alg:?} in {s:?} (only sha256 is supported)"));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("invalid digest {s:?}: expected 64 lowercase hex digits"));
        }
        Ok(Digest { hex: hex.to_string() })
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    pub fn of(data: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::new_with_prefix(data))
    }

    pub fn from_sha256(h: Sha256) -> Digest {
        let bytes = h.finalize();
        let mut hex = String::with_capacity(64);
        for b in bytes.iter() {
            hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        Digest { hex }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Hashes everything read through it, so a digest is checked in the same
/// pass that consumes the bytes.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), count: 0 }
    }

    /// Reads what is left (e.g. tar padding after the end marker) and
    /// returns the digest of the whole stream and its length.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest::from_sha256(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), count: 0 }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_sha256(self.hasher), self.count)
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_value() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hashing_reader_matches_one_shot() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        let (d, n) = r.finish().unwrap();
        assert_eq!(d, Digest::of(&data));
        assert_eq!(n, 100_000);
    }

    #[test]
    fn hostile_digests_are_refused() {
        for s in [
            "",
            "sha256",
            "sha256:",
            "sha512:abcd",
            "sha256:../../../etc/passwd",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        ] {
            assert!(Digest::parse(s).is_err(), "{s}");
        }
        assert!(Digest::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").is_ok());
    }
}
