//! Rapport's protobuf contracts as Rust types, tonic clients and servers.
//!
//! Every `.proto` under `proto/rapport/` is compiled by `build.rs` with
//! protox; each package `rapport.<area>.<version>` is the module
//! `<area>::<version>` here, generated, so a new package needs no edit in
//! this crate. Besides the generated code:
//! - [`FILE_DESCRIPTOR_SET`], the encoded descriptor set that gRPC
//!   reflection serves;
//! - [`SERVICES`], every service and its methods (what role tables are
//!   checked against);
//! - [`MessageLimits`], implemented by every generated server, so the kit
//!   applies message size limits to any of them in one place;
//! - [`WatchRequest`] and [`WatchResponse`], implemented by every package's
//!   `WatchChanges` messages, so the kit serves and follows any change feed.

#![allow(clippy::doc_markdown, clippy::large_enum_variant, missing_docs)]

/// Encoded `google.protobuf.FileDescriptorSet` of every Rapport proto.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rapport_descriptor.bin"));

include!(concat!(env!("OUT_DIR"), "/rapport_index.rs"));

/// A generated gRPC server whose message size limits can be set.
pub trait MessageLimits {
    /// This server accepting and sending messages of at most `max` bytes.
    fn with_message_limit(self, max: usize) -> Self;
}

/// One item of a change feed, whatever the package's response type.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    /// A committed change.
    Change(common::v1::ChangeEvent),
    /// The stream is alive; nothing new up to its sequence.
    Heartbeat(common::v1::Heartbeat),
}

/// A package's `WatchChangesRequest`.
pub trait WatchRequest: Send + 'static {
    /// A request resuming after `after_sequence`, for `resource_types`.
    fn new(after_sequence: i64, resource_types: Vec<String>) -> Self;
    /// The sequence to resume after and the resource types asked for.
    fn into_parts(self) -> (i64, Vec<String>);
}

/// A package's `WatchChangesResponse`.
pub trait WatchResponse: Send + 'static {
    /// The response carrying `change`.
    fn change(change: common::v1::ChangeEvent) -> Self;
    /// The response carrying `heartbeat`.
    fn heartbeat(heartbeat: common::v1::Heartbeat) -> Self;
    /// What the response carries; `None` for an empty one.
    fn into_event(self) -> Option<FeedEvent>;
}
