//! When a unary call whose connection broke may be sent again.
//!
//! A connection reset after the request went out is ambiguous: the backend
//! may have run the call. Sending it again is safe only for a read, or for
//! a write that carries an idempotency key (`request_id`, which the
//! backend replays). Calls the backend provably did not start — a refused
//! stream, a stream past a graceful GOAWAY, a connection that never opened
//! — go again whatever they are (see [`crate::conn`]).

use std::collections::HashMap;

use prost::Message as _;

/// Whether a call may be sent again after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// A read (`Get…`, `BatchGet…`, `List…`, `Search…`, or a method the
    /// contract declares `idempotency_level` NO_SIDE_EFFECTS or
    /// IDEMPOTENT): always.
    Read,
    /// A write whose request has a `request_id` field of this number: only
    /// when the call sets it.
    WithKey(u32),
    /// Any other write: never.
    Never,
}

impl Resend {
    /// May `body` (one gRPC frame) be sent again after a reset?
    pub fn allows(self, body: &[u8]) -> bool {
        match self {
            Resend::Read => true,
            Resend::WithKey(field) => carries_key(body, field),
            Resend::Never => false,
        }
    }
}

/// The rule of every method of the contracts, by gRPC path.
pub fn rules(descriptor_set: &[u8]) -> anyhow::Result<HashMap<String, Resend>> {
    let set = prost_types::FileDescriptorSet::decode(descriptor_set)?;
    let mut key_fields = HashMap::new();
    for file in &set.file {
        for message in &file.message_type {
            let field = message.field.iter().find(|field| field.name() == "request_id");
            if let Some(field) =
                field.filter(|field| field.r#type() == prost_types::field_descriptor_proto::Type::String)
            {
                key_fields.insert(format!(".{}.{}", file.package(), message.name()), field.number() as u32);
            }
        }
    }
    let mut rules = HashMap::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                let name = method.name();
                use prost_types::method_options::IdempotencyLevel;
                let declared = method.options.as_ref().map(|options| options.idempotency_level());
                let read = ["Get", "BatchGet", "List", "Search"].iter().any(|verb| name.starts_with(verb))
                    || matches!(
                        declared,
                        Some(IdempotencyLevel::NoSideEffects | IdempotencyLevel::Idempotent)
                    );
                let rule = match key_fields.get(method.input_type()) {
                    _ if read => Resend::Read,
                    Some(field) => Resend::WithKey(*field),
                    None => Resend::Never,
                };
                rules.insert(format!("/{}.{}/{name}", file.package(), service.name()), rule);
            }
        }
    }
    Ok(rules)
}

/// True when the uncompressed gRPC frame `body` holds a message whose
/// top-level string field `field` is set (non-empty) — as the backend
/// decodes it: the last occurrence of the field wins.
fn carries_key(body: &[u8], field: u32) -> bool {
    let Some((&0, rest)) = body.split_first() else { return false };
    let Some(mut message) = rest.get(4..) else { return false };
    let mut keyed = false;
    while !message.is_empty() {
        let Some((tag, after)) = varint(message) else { return false };
        message = after;
        let (number, wire) = (tag >> 3, tag & 7);
        let skip = match wire {
            0 => match varint(message) {
                Some((_, after)) => {
                    message = after;
                    continue;
                }
                None => return false,
            },
            1 => 8,
            5 => 4,
            2 => {
                let Some((len, after)) = varint(message) else { return false };
                message = after;
                let Ok(len) = usize::try_from(len) else { return false };
                if number == u64::from(field) {
                    keyed = len > 0;
                }
                len
            }
            _ => return false,
        };
        let Some(after) = message.get(skip..) else { return false };
        message = after;
    }
    keyed
}

/// A protobuf varint and the bytes after it.
fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[index + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rapport_proto::contacts::v1::{Contact, CreateContactRequest};

    use super::*;

    fn frame(message: &impl prost::Message) -> Vec<u8> {
        let bytes = message.encode_to_vec();
        let mut frame = vec![0];
        frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        frame.extend_from_slice(&bytes);
        frame
    }

    #[test]
    fn reads_always_writes_with_a_key_only_when_set_others_never() {
        let rules = rules(rapport_proto::FILE_DESCRIPTOR_SET).unwrap();
        assert_eq!(rules["/rapport.contacts.v1.ContactService/GetContact"], Resend::Read);
        assert_eq!(rules["/rapport.contacts.v1.ContactService/ListCompanies"], Resend::Read);
        assert_eq!(rules["/rapport.contacts.v1.ContactService/UpdateContact"], Resend::Never);
        assert_eq!(rules["/rapport.bench.v1.EchoService/Echo"], Resend::Read, "declared NO_SIDE_EFFECTS");
        let create = rules["/rapport.contacts.v1.ContactService/CreateContact"];
        assert!(matches!(create, Resend::WithKey(_)));
        assert!(matches!(rules["/rapport.pipeline.v1.DealService/WinDeal"], Resend::WithKey(_)));
        let contact = Contact { given_name: "Ada".into(), tags: vec!["x".into()], ..Default::default() };
        let keyed = CreateContactRequest { contact: Some(contact.clone()), request_id: "r-1".into() };
        let unkeyed = CreateContactRequest { contact: Some(contact), request_id: String::new() };
        assert!(create.allows(&frame(&keyed)));
        assert!(!create.allows(&frame(&unkeyed)));
        // A compressed or malformed frame is never taken to carry a key.
        let mut compressed = frame(&keyed);
        compressed[0] = 1;
        assert!(!create.allows(&compressed));
        assert!(!create.allows(&[0, 0, 0, 0, 3, 0xff, 0xff, 0xff]));
        // The last occurrence wins, as the backend decodes it.
        let mut twice = keyed.encode_to_vec();
        twice.extend_from_slice(
            &CreateContactRequest { contact: None, request_id: String::new() }.encode_to_vec(),
        );
        // An empty string is not encoded in proto3: append it by hand.
        let field = match rules["/rapport.contacts.v1.ContactService/CreateContact"] {
            Resend::WithKey(field) => field,
            _ => unreachable!(),
        };
        twice.extend_from_slice(&[((field << 3) | 2) as u8, 0]);
        let mut frame_twice = vec![0];
        frame_twice.extend_from_slice(&(twice.len() as u32).to_be_bytes());
        frame_twice.extend_from_slice(&twice);
        assert!(!create.allows(&frame_twice));
    }
}
