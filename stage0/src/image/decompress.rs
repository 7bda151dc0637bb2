//! Layer compression, recognised by magic bytes (media types lie more often
//! than magic numbers do).

use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

use super::{io_err, ImageError, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Wraps a layer blob in the decoder its first bytes call for.
pub fn decoder<'a, R: Read + 'a>(blob: R, what: &str) -> Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(128 * 1024, blob);
    let head = r.fill_buf().map_err(io_err(format!("cannot read {what}")))?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(MultiGzDecoder::new(r)))
    } else if head.starts_with(&ZSTD_MAGIC) {
        Err(ImageError::Invalid(format!("{what} is zstd-compressed, which this skiff cannot read yet")))
    } else {
        Ok(Box::new(r))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn gzip_and_plain_are_read() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"tar bytes").unwrap();
        let gz = gz.finish().unwrap();
        let mut out = String::new();
        decoder(&gz[..], "l").unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "tar bytes");
        out.clear();
        decoder(&b"plain"[..], "l").unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "plain");
        assert!(decoder(&[0x28, 0xb5, 0x2f, 0xfd, 0][..], "l").is_err());
    }

    #[test]
    fn corrupt_gzip_fails_on_read() {
        let mut out = Vec::new();
        assert!(decoder(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3][..], "l")
            .unwrap()
            .read_to_end(&mut out)
            .is_err());
    }
}
