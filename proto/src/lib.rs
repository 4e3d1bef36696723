//! Rapport's protobuf contracts as Rust types, tonic clients and servers.
//!
//! Every `.proto` under `proto/rapport/` is compiled by `build.rs` with
//! protox; [`FILE_DESCRIPTOR_SET`] is the encoded descriptor set that gRPC
//! reflection serves.

#![allow(clippy::doc_markdown, clippy::large_enum_variant, missing_docs)]

/// Encoded `google.protobuf.FileDescriptorSet` of every Rapport proto.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rapport_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("rapport.common.v1");
    }
}

pub mod contacts {
    pub mod v1 {
        tonic::include_proto!("rapport.contacts.v1");
    }
}

pub mod pipeline {
    pub mod v1 {
        tonic::include_proto!("rapport.pipeline.v1");
    }
}

pub mod gateway {
    pub mod v1 {
        tonic::include_proto!("rapport.gateway.v1");
    }
}

pub mod bench {
    pub mod v1 {
        tonic::include_proto!("rapport.bench.v1");
    }
}
