//! Comments: public replies and internal notes, with attachments by
//! reference.

use rapport_kit::fields::{Violation, cap, long_text, text};
use rapport_proto::support::v1::{Attachment, Comment, CommentAuthorKind};
use serde::{Deserialize, Serialize};

/// Most attachments on one comment.
pub const MAX_ATTACHMENTS: usize = 20;
/// Longest comment body, in characters.
pub const MAX_BODY: usize = 100_000;

/// Who wrote a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// Someone working the case.
    Agent,
    /// The requester, relayed.
    Requester,
}

impl Author {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Author::Agent => "AGENT",
            Author::Requester => "REQUESTER",
        }
    }
}

/// A stored attachment reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub name: String,
    pub media_type: String,
    pub size_bytes: i64,
    pub url: String,
}

impl From<&AttachmentRef> for Attachment {
    fn from(reference: &AttachmentRef) -> Attachment {
        Attachment {
            name: reference.name.clone(),
            media_type: reference.media_type.clone(),
            size_bytes: reference.size_bytes,
            url: reference.url.clone(),
        }
    }
}

/// A parsed comment.
#[derive(Debug, Clone)]
pub struct CommentInput {
    pub internal: bool,
    pub author: Author,
    pub body: String,
    pub attachments: Vec<AttachmentRef>,
}

impl CommentInput {
    /// Parses `comment` (paths prefixed `comment.`).
    pub fn parse(comment: &Comment) -> Result<CommentInput, Vec<Violation>> {
        let mut violations = Vec::new();
        let author = match CommentAuthorKind::try_from(comment.author_kind) {
            Ok(CommentAuthorKind::Unspecified | CommentAuthorKind::Agent) => Author::Agent,
            Ok(CommentAuthorKind::Requester) => Author::Requester,
            Err(_) => {
                violations.push(Violation::new("comment.author_kind", "is not a known author kind"));
                Author::Agent
            }
        };
        if author == Author::Requester && comment.internal {
            violations.push(Violation::new("comment.internal", "a requester's comment is always public"));
        }
        let body = long_text("comment.body", &comment.body, true, MAX_BODY).unwrap_or_else(|violation| {
            violations.push(violation);
            String::new()
        });
        let attachments = attachments(&comment.attachments).unwrap_or_else(|mut found| {
            violations.append(&mut found);
            Vec::new()
        });
        if violations.is_empty() {
            Ok(CommentInput { internal: comment.internal, author, body, attachments })
        } else {
            Err(violations)
        }
    }
}

/// Parses attachment references.
pub fn attachments(raw: &[Attachment]) -> Result<Vec<AttachmentRef>, Vec<Violation>> {
    cap("comment.attachments", raw, MAX_ATTACHMENTS).map_err(|violation| vec![violation])?;
    let mut violations = Vec::new();
    let mut parsed = Vec::with_capacity(raw.len());
    for (index, attachment) in raw.iter().enumerate() {
        let field = |name: &str| format!("comment.attachments[{index}].{name}");
        let name = text(&field("name"), &attachment.name, true, 255);
        let media_type = text(&field("media_type"), &attachment.media_type, false, 255);
        let url = text(&field("url"), &attachment.url, true, 2000).and_then(|url| {
            let local = ["http://localhost", "http://127.0.0.1", "http://[::1]"]
                .iter()
                .any(|start| url.starts_with(start));
            if url.starts_with("https://") || local {
                Ok(url)
            } else {
                Err(Violation::new(field("url"), "must be an https URL (or http on localhost)"))
            }
        });
        if attachment.size_bytes < 0 {
            violations.push(Violation::new(field("size_bytes"), "must not be negative"));
        }
        match (name, media_type, url) {
            (Ok(name), Ok(media_type), Ok(url)) => {
                parsed.push(AttachmentRef { name, media_type, size_bytes: attachment.size_bytes, url })
            }
            (name, media_type, url) => {
                violations.extend([name.err(), media_type.err(), url.err()].into_iter().flatten())
            }
        }
    }
    if violations.is_empty() { Ok(parsed) } else { Err(violations) }
}
