//! Property tests over the gateway's gRPC(-web) framing of proxied bodies:
//! whatever bytes arrive, in whatever chunks, no panic, and a body that is
//! not well framed is a clean INVALID_ARGUMENT or RESOURCE_EXHAUSTED.

use proptest::prelude::*;
use rapport_gateway::frames::{FrameTracker, check_unary};
use tonic::Code;

/// Bytes shaped like gRPC frames (flag, 4-byte length, payload), sometimes
/// lying about their length, sometimes cut short, sometimes plain noise.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let frame = (any::<u8>(), prop_oneof![0u32..64, any::<u32>()], prop::collection::vec(any::<u8>(), 0..64))
        .prop_map(|(flag, length, payload)| {
            let mut frame = vec![flag & 0x81];
            frame.extend_from_slice(&length.to_be_bytes());
            frame.extend_from_slice(&payload);
            frame
        });
    prop_oneof![
        prop::collection::vec(frame, 0..4).prop_map(|frames| frames.concat()),
        prop::collection::vec(any::<u8>(), 0..256),
    ]
}

proptest! {
    #[test]
    fn framing_never_panics_and_rejects_cleanly(bytes in body(), cuts in prop::collection::vec(0usize..256, 0..6), max in 0usize..128) {
        if let Err(err) = check_unary(&bytes, max) {
            let code = err.to_status().code();
            prop_assert!(matches!(code, Code::InvalidArgument | Code::ResourceExhausted), "{code:?}");
        }
        let mut tracker = FrameTracker::new(max);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|cut| cut.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            if let Err(err) = tracker.feed(&bytes[start..cut]) {
                let code = err.to_status().code();
                prop_assert!(matches!(code, Code::InvalidArgument | Code::ResourceExhausted), "{code:?}");
                return Ok(());
            }
            start = cut;
        }
        let _ = tracker.finish();
        let _ = tracker.at_boundary();
    }
}
