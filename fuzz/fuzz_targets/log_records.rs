//! What apps write becomes log records (and what is in a log file is read
//! back by `skiff logs`): whatever the bytes, the records written read back
//! as the same records, and no text is lost or gained.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_pods::logfile::{split, Record, Stream};

fuzz_target!(|data: &[u8]| {
    let _ = Record::parse(data);
    let mut buf = data.to_vec();
    let records = split(&mut buf, Stream::Stderr, "2026-12-01T00:00:00.000000000Z", true);
    assert!(buf.is_empty());
    let mut text = Vec::new();
    for r in &records {
        let bytes = r.to_bytes();
        assert_eq!(Record::parse(&bytes[..bytes.len() - 1]).as_ref(), Some(r));
        text.extend_from_slice(&r.text);
        if !r.partial {
            text.push(b'\n');
        }
    }
    assert_eq!(text, data);
});
