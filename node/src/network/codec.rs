//! The request-response wire format: one length-prefixed frame each way.
//!
//! A frame is a 4-byte big-endian length followed by that many payload bytes. The length is
//! checked against the limit before a single payload byte is buffered, so an oversize frame
//! costs the reader 4 bytes, not the claimed size; and the payload's buffer grows with the
//! bytes that arrive, so a frame within the limit costs what was sent, not what was claimed.

use std::fmt;
use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

/// A frame longer than its limit, read or about to be written. Carried inside an
/// `io::Error` of kind `InvalidData`, where the event loop finds it again with
/// [`FrameTooLarge::find`] to count and penalise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameTooLarge {
    pub(super) size_bytes: usize,
    pub(super) limit_bytes: usize,
}

impl fmt::Display for FrameTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame of {} bytes exceeds the {}-byte limit",
            self.size_bytes, self.limit_bytes
        )
    }
}

impl std::error::Error for FrameTooLarge {}

impl FrameTooLarge {
    pub(super) fn find(error: &io::Error) -> Option<FrameTooLarge> {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<FrameTooLarge>())
            .copied()
    }
}

/// Moves opaque byte payloads, bounded separately for requests and responses.
#[derive(Debug, Clone, Copy)]
pub(super) struct BytesCodec {
    pub(super) request_bytes_max: usize,
    pub(super) response_bytes_max: usize,
}

async fn read_frame<T>(io: &mut T, limit_bytes: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let size_bytes = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if size_bytes > limit_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameTooLarge {
                size_bytes,
                limit_bytes,
            },
        ));
    }
    // The buffer grows with the bytes that arrive, not with the prefix's claim: a peer that
    // claims the limit and sends nothing costs the reader nothing beyond the prefix.
    let mut payload = Vec::new();
    let claimed_bytes = u64::try_from(size_bytes).unwrap_or(u64::MAX);
    io.take(claimed_bytes).read_to_end(&mut payload).await?;
    if payload.len() < size_bytes {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "frame of {size_bytes} bytes ended after {} bytes",
                payload.len()
            ),
        ));
    }
    Ok(payload)
}

async fn write_frame<T>(io: &mut T, payload: &[u8], limit_bytes: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            FrameTooLarge {
                size_bytes: payload.len(),
                limit_bytes,
            },
        )
    };
    if payload.len() > limit_bytes {
        return Err(too_large());
    }
    let size = u32::try_from(payload.len()).map_err(|_| too_large())?;
    io.write_all(&size.to_be_bytes()).await?;
    io.write_all(payload).await?;
    io.flush().await
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.request_bytes_max).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.response_bytes_max).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, self.request_bytes_max).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, self.response_bytes_max).await
    }
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;

    use super::*;

    fn run<F: std::future::Future>(future: F) -> F::Output {
        futures::executor::block_on(future)
    }

    #[test]
    fn a_frame_round_trips() {
        let mut buffer = Cursor::new(Vec::new());
        run(write_frame(&mut buffer, b"catch-up", 16)).unwrap();
        assert_eq!(buffer.get_ref().as_slice(), b"\x00\x00\x00\x08catch-up");
        buffer.set_position(0);
        assert_eq!(run(read_frame(&mut buffer, 16)).unwrap(), b"catch-up");
    }

    #[test]
    fn an_oversize_prefix_is_refused_before_the_payload_is_read() {
        let mut buffer = Cursor::new(b"\xff\xff\xff\xff".to_vec());
        let error = run(read_frame(&mut buffer, 16)).unwrap_err();
        assert_eq!(
            FrameTooLarge::find(&error),
            Some(FrameTooLarge {
                size_bytes: u32::MAX as usize,
                limit_bytes: 16
            })
        );
    }

    #[test]
    fn an_oversize_payload_is_not_written() {
        let mut buffer = Cursor::new(Vec::new());
        let error = run(write_frame(&mut buffer, &[0; 17], 16)).unwrap_err();
        assert_eq!(
            FrameTooLarge::find(&error),
            Some(FrameTooLarge {
                size_bytes: 17,
                limit_bytes: 16
            })
        );
        assert!(buffer.get_ref().is_empty());
    }

    /// A stream that hands over its bytes and remembers the largest buffer it was asked to
    /// fill: what the reader had allocated for the payload.
    struct Recording {
        bytes: Cursor<Vec<u8>>,
        largest_buffer_bytes: usize,
    }

    impl AsyncRead for Recording {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            context: &mut std::task::Context<'_>,
            buffer: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.largest_buffer_bytes = self.largest_buffer_bytes.max(buffer.len());
            std::pin::Pin::new(&mut self.bytes).poll_read(context, buffer)
        }
    }

    #[test]
    fn a_claimed_size_is_not_allocated_before_its_bytes_arrive() {
        // A prefix claiming 16 MiB (within the limit), then 5 bytes and the end of the stream:
        // the reader reports the truncation having asked for buffers of about what arrived.
        let limit_bytes = 32 << 20;
        let mut bytes = (16u32 << 20).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"short");
        let mut stream = Recording {
            bytes: Cursor::new(bytes),
            largest_buffer_bytes: 0,
        };
        let error = run(read_frame(&mut stream, limit_bytes)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            stream.largest_buffer_bytes < 64 * 1024,
            "a {} byte buffer was offered for 5 bytes",
            stream.largest_buffer_bytes
        );
    }

    #[test]
    fn a_truncated_payload_is_an_error() {
        let mut buffer = Cursor::new(b"\x00\x00\x00\x08catch".to_vec());
        let error = run(read_frame(&mut buffer, 16)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
