//! What a peer sends over request-response (`node/src/network/codec.rs`, then
//! `node/src/messages.rs`): a length-prefixed frame, read with the node's limit for its side,
//! whose payload is a catch-up request or answer. The first byte picks the side. A frame read
//! consumed exactly its prefix and payload, and writes back to those bytes; an oversize
//! prefix is refused as such; a decoded message decodes again from its own encoding to the
//! same value.
#![no_main]

use hutong_fuzz::messages::{self, SyncRequest, SyncResponse};
use hutong_fuzz::{
    FrameSide, frame_limit_bytes, heap, is_frame_too_large, read_frame, write_frame,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((side, stream)) = data.split_first() else {
        return;
    };
    let side = if side % 2 == 0 {
        FrameSide::Request
    } else {
        FrameSide::Response
    };
    let limit_bytes = frame_limit_bytes(side);
    let (read, consumed) = heap::bounded(stream, |bytes| read_frame(side, bytes));
    let payload = match read {
        Ok(payload) => payload,
        Err(error) => {
            if let Some(prefix) = stream.get(..4) {
                let claimed = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                let oversize = usize::try_from(claimed).map_or(true, |size| size > limit_bytes);
                assert_eq!(is_frame_too_large(&error), oversize);
                if oversize {
                    assert_eq!(consumed, 4, "an oversize frame's payload was read");
                }
            }
            return;
        }
    };
    assert!(payload.len() <= limit_bytes);
    assert_eq!(consumed, 4 + payload.len());
    let written = write_frame(side, payload.clone()).expect("a frame read writes back");
    assert_eq!(written, stream[..consumed]);
    match side {
        FrameSide::Request => {
            let decoded = heap::bounded(&payload, |bytes| {
                messages::decode::<SyncRequest>(bytes, limit_bytes)
            });
            if let Ok(request) = decoded {
                let again =
                    messages::decode::<SyncRequest>(&messages::encode(&request), limit_bytes);
                assert_eq!(again.ok(), Some(request));
            }
        }
        FrameSide::Response => {
            let decoded = heap::bounded(&payload, |bytes| {
                messages::decode::<SyncResponse>(bytes, limit_bytes)
            });
            if let Ok(response) = decoded {
                let again =
                    messages::decode::<SyncResponse>(&messages::encode(&response), limit_bytes);
                assert_eq!(again.ok(), Some(response));
            }
        }
    }
});
