//! A scanned QR payload (`hutong_verify::qr::QrPayload`, the `HT1:` text and the bytes under
//! its base32): what decodes is exactly its own encoding, so one licence has one code, and the
//! text the API prints for it decodes to the same payload.
#![no_main]

use hutong_fuzz::heap;
use hutong_verify::limits::QR_TEXT_CHARS_MAX;
use hutong_verify::qr::QrPayload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = heap::bounded(data, QrPayload::from_bytes) {
        assert_eq!(
            payload.to_bytes(),
            data,
            "a decoded payload re-encodes to other bytes"
        );
        let text = payload.to_text();
        let again = QrPayload::from_text(&text).expect("the printed text decodes");
        assert_eq!(again, payload);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let decoded = heap::bounded(data, |_| QrPayload::from_text(text));
        if let Ok(payload) = decoded {
            assert!(text.trim().len() <= QR_TEXT_CHARS_MAX);
            assert_eq!(
                payload.to_text(),
                text.trim(),
                "a decoded text re-encodes to another"
            );
        }
    }
});
