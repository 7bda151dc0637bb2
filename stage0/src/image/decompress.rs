//! Layer compression, recognised by magic bytes (media types lie more often
//! than magic numbers do).

use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

use super::{io_err, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Wraps a layer blob in the decoder its first bytes call for.
pub fn decoder<'a, R: Read + 'a>(blob: R, what: &str) -> Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(128 * 1024, blob);
    let head = r.fill_buf().map_err(io_err(format!("cannot read {what}")))?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(MultiGzDecoder::new(r)))
    } else if head.starts_with(&ZSTD_MAGIC) {
        let d = zstd::stream::read::Decoder::with_buffer(r)
            .map_err(io_err(format!("cannot start decompressing {what} (zstd)")))?;
        Ok(Box::new(d))
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
        let z = zstd::encode_all(&b"zstd tar bytes"[..], 3).unwrap();
        out.clear();
        decoder(&z[..], "l").unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "zstd tar bytes");
        let mut junk = Vec::new();
        assert!(decoder(&[0x28, 0xb5, 0x2f, 0xfd, 0, 1, 2][..], "l").unwrap().read_to_end(&mut junk).is_err());
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
