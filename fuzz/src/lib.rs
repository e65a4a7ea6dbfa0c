//! What the fuzz targets share: the node's decoders, compiled from the node's own source files,
//! and a counting allocator that bounds the heap each decoding may take.
//!
//! The node is a binary crate, so its decoders cannot be named from another crate. Its files
//! that hold them depend on nothing of the node but each other, and are compiled here as they
//! are, by path, as modules of this crate's root (the names `crate::limits`,
//! `crate::messages`, `crate::durable` they use resolve to the same files here as in the
//! node). A change there that reaches further into the node fails this crate's build, which
//! `scripts/fuzz` runs in CI.

pub mod heap;

/// The node's fixed limits (`node/src/limits.rs`).
#[path = "../../node/src/limits.rs"]
#[allow(dead_code)]
pub mod limits;

/// What nodes say to each other (`node/src/messages.rs`).
#[path = "../../node/src/messages.rs"]
pub mod messages;

/// The configuration file (`node/src/config.rs`).
#[path = "../../node/src/config.rs"]
#[allow(dead_code)]
pub mod config;

/// Crash-safe file replacement (`node/src/durable.rs`), which the signing state's writer uses.
#[path = "../../node/src/durable.rs"]
#[allow(dead_code)]
mod durable;

/// The signing state file (`node/src/signing_state.rs`).
#[path = "../../node/src/signing_state.rs"]
#[allow(dead_code)]
pub mod signing_state;

/// The request-response frame codec (`node/src/network/codec.rs`); its items are visible to
/// this crate's root, which is its parent here.
#[path = "../../node/src/network/codec.rs"]
#[allow(dead_code)]
mod network_codec;

/// Which side of a request-response exchange a frame is read on, and so its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameSide {
    Request,
    Response,
}

/// The node's frame limits: those the network's event loop gives its codec.
pub fn frame_limit_bytes(side: FrameSide) -> usize {
    match side {
        FrameSide::Request => limits::SYNC_REQUEST_BYTES_MAX,
        FrameSide::Response => limits::SYNC_RESPONSE_BYTES_MAX,
    }
}

fn node_codec() -> network_codec::BytesCodec {
    network_codec::BytesCodec {
        request_bytes_max: frame_limit_bytes(FrameSide::Request),
        response_bytes_max: frame_limit_bytes(FrameSide::Response),
    }
}

fn protocol() -> libp2p::StreamProtocol {
    libp2p::StreamProtocol::new("/hutong/fuzz/1")
}

/// Reads one frame from `bytes` as the node's codec reads it from a stream; the second value
/// is how many bytes the read consumed.
pub fn read_frame(side: FrameSide, bytes: &[u8]) -> (std::io::Result<Vec<u8>>, usize) {
    use libp2p::request_response::Codec;
    let mut codec = node_codec();
    let mut stream = futures::io::Cursor::new(bytes);
    let result = futures::executor::block_on(async {
        match side {
            FrameSide::Request => codec.read_request(&protocol(), &mut stream).await,
            FrameSide::Response => codec.read_response(&protocol(), &mut stream).await,
        }
    });
    let consumed = usize::try_from(stream.position()).unwrap_or(usize::MAX);
    (result, consumed)
}

/// Writes `payload` as one frame, as the node's codec writes it to a stream.
pub fn write_frame(side: FrameSide, payload: Vec<u8>) -> std::io::Result<Vec<u8>> {
    use libp2p::request_response::Codec;
    let mut codec = node_codec();
    let mut stream = futures::io::Cursor::new(Vec::new());
    futures::executor::block_on(async {
        match side {
            FrameSide::Request => codec.write_request(&protocol(), &mut stream, payload).await,
            FrameSide::Response => {
                codec
                    .write_response(&protocol(), &mut stream, payload)
                    .await
            }
        }
    })?;
    Ok(stream.into_inner())
}

/// Whether a frame read failed on its length prefix alone (the limit), as the event loop sees it.
pub fn is_frame_too_large(error: &std::io::Error) -> bool {
    network_codec::FrameTooLarge::find(error).is_some()
}
