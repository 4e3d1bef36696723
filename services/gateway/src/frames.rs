//! gRPC length-prefixed framing, checked without decoding the messages.
//!
//! Every gRPC message on the wire is one byte of flags (0, or 1 when
//! compressed), a four-byte big-endian length, and that many bytes. The
//! gateway forwards messages undecoded, but checks the framing so garbage,
//! truncated or oversized requests are refused at the edge with a clear
//! status instead of reaching a backend.

/// Why a request's framing is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The flags byte is neither 0 nor 1: not gRPC framing.
    #[error("malformed gRPC frame: flags byte {0:#04x} (expected 0 or 1)")]
    BadFlags(u8),
    /// A message is larger than the configured maximum.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body ended inside a frame.
    #[error("truncated gRPC frame: the request ended inside a message")]
    Truncated,
    /// A unary call carried other than exactly one message.
    #[error("a unary call must carry exactly one message, got {0}")]
    MessageCount(usize),
}

impl FrameError {
    /// The gRPC status for this error: RESOURCE_EXHAUSTED for size,
    /// INVALID_ARGUMENT otherwise, with an ErrorInfo reason.
    pub fn to_status(&self) -> tonic::Status {
        let (code, reason) = match self {
            FrameError::TooLarge { .. } => (tonic::Code::ResourceExhausted, "MESSAGE_TOO_LARGE"),
            _ => (tonic::Code::InvalidArgument, "MALFORMED_GRPC_FRAME"),
        };
        rapport_kit::error::Problem::new(code, reason, self.to_string()).into_status()
    }
}

/// Follows the framing of a byte stream chunk by chunk.
#[derive(Debug, Clone)]
pub struct FrameTracker {
    max: usize,
    /// Header bytes collected so far (up to 5).
    header: [u8; 5],
    header_len: usize,
    /// Payload bytes still expected for the current message.
    remaining: usize,
    /// Complete messages seen.
    messages: usize,
}

impl FrameTracker {
    /// A tracker refusing messages larger than `max` bytes.
    pub fn new(max: usize) -> FrameTracker {
        FrameTracker { max, header: [0; 5], header_len: 0, remaining: 0, messages: 0 }
    }

    /// Consumes the next chunk of the stream.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), FrameError> {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(chunk.len());
                self.remaining -= take;
                chunk = &chunk[take..];
                if self.remaining == 0 {
                    self.messages += 1;
                }
                continue;
            }
            let take = (5 - self.header_len).min(chunk.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&chunk[..take]);
            self.header_len += take;
            chunk = &chunk[take..];
            if self.header_len < 5 {
                continue;
            }
            self.header_len = 0;
            let flags = self.header[0];
            if flags > 1 {
                return Err(FrameError::BadFlags(flags));
            }
            let len = u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]);
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > self.max {
                return Err(FrameError::TooLarge { len, max: self.max });
            }
            if len == 0 {
                self.messages += 1;
            }
            self.remaining = len;
        }
        Ok(())
    }

    /// True between messages (where a stream may cleanly end).
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.remaining == 0
    }

    /// Checks the stream ended between messages.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.at_boundary() { Ok(()) } else { Err(FrameError::Truncated) }
    }

    /// Complete messages seen so far.
    pub fn messages(&self) -> usize {
        self.messages
    }
}

/// Checks a whole unary request body: exactly one complete message of at
/// most `max` bytes.
pub fn check_unary(body: &[u8], max: usize) -> Result<(), FrameError> {
    let mut tracker = FrameTracker::new(max);
    tracker.feed(body)?;
    tracker.finish()?;
    match tracker.messages() {
        1 => Ok(()),
        n => Err(FrameError::MessageCount(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn unary_bodies_need_exactly_one_complete_message() {
        assert_eq!(check_unary(&frame(b"hello"), 10), Ok(()));
        assert_eq!(check_unary(&frame(b""), 10), Ok(()));
        assert_eq!(check_unary(b"", 10), Err(FrameError::MessageCount(0)));
        let two = [frame(b"a"), frame(b"b")].concat();
        assert_eq!(check_unary(&two, 10), Err(FrameError::MessageCount(2)));
        let whole = frame(b"hello");
        assert_eq!(check_unary(&whole[..whole.len() - 1], 10), Err(FrameError::Truncated));
        assert_eq!(check_unary(&whole[..3], 10), Err(FrameError::Truncated));
        assert_eq!(check_unary(b"GET / HTTP/1.1\r\n", 10), Err(FrameError::BadFlags(b'G')));
        assert_eq!(check_unary(&frame(&[7; 11]), 10), Err(FrameError::TooLarge { len: 11, max: 10 }));
    }

    #[test]
    fn the_tracker_follows_messages_split_across_chunks() {
        let stream = [frame(b"first"), frame(b""), frame(b"third message")].concat();
        for split in 1..stream.len() {
            let mut tracker = FrameTracker::new(100);
            tracker.feed(&stream[..split]).unwrap();
            tracker.feed(&stream[split..]).unwrap();
            assert!(tracker.at_boundary());
            assert_eq!(tracker.messages(), 3);
        }
        let mut tracker = FrameTracker::new(100);
        tracker.feed(&stream[..7]).unwrap();
        assert!(!tracker.at_boundary());
        assert_eq!(tracker.finish(), Err(FrameError::Truncated));
    }

    #[test]
    fn statuses_name_the_problem() {
        let status = FrameError::TooLarge { len: 11, max: 10 }.to_status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("11 bytes"));
        assert_eq!(FrameError::Truncated.to_status().code(), tonic::Code::InvalidArgument);
    }
}
