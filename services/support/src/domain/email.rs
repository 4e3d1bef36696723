//! Email in: a raw RFC 5322 message parsed (MIME, encodings, attachments)
//! into what a case needs; and the threading keys of email out.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders as _};
use rapport_kit::fields::Violation;
use sha2::{Digest as _, Sha256};

use super::comment::{AttachmentRef, MAX_ATTACHMENTS, MAX_BODY};

/// Most bytes of one raw message (below gRPC's 4 MiB message limit).
pub const MAX_MESSAGE_BYTES: usize = 3 * 1024 * 1024;

/// Most message ids read from `In-Reply-To` and `References`.
const MAX_THREAD_IDS: usize = 50;

/// An inbound email as a case sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Its `Message-ID` without angle brackets, or a digest of the raw
    /// message when it has none (so a resent copy is still recognized).
    pub message_id: String,
    /// The sender's address, lowercased.
    pub from_address: String,
    /// The sender's display name, if any.
    pub from_name: String,
    /// The subject (empty when missing).
    pub subject: String,
    /// Message ids it answers (`In-Reply-To`, then `References`, newest first).
    pub thread: Vec<String>,
    /// The text body (the HTML body as text when there is no text part),
    /// control characters but line breaks and tabs removed, capped.
    pub body: String,
    /// The attachments: name, media type and decoded size (contents are
    /// not kept: the MTA or webhook keeps the original message).
    pub attachments: Vec<AttachmentRef>,
}

fn clean(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .take(max_chars)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn bracketless(id: &str) -> String {
    clean(id.trim().trim_start_matches('<').trim_end_matches('>'), 250)
}

/// Parses `raw`; INVALID_ARGUMENT (field `raw_message`) for a message too
/// big, without a sender address, or without anything to say.
pub fn parse(raw: &[u8]) -> Result<Inbound, Violation> {
    let field = "raw_message";
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(Violation::new(field, format!("must be at most {MAX_MESSAGE_BYTES} bytes")));
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| Violation::new(field, "is not an RFC 5322 message"))?;
    let sender = message.from().and_then(|from| from.first());
    let from_address = sender
        .and_then(|mailbox| mailbox.address())
        .map(|address| address.trim().to_lowercase())
        .filter(|address| {
            address.contains('@') && address.len() <= 254 && !address.chars().any(char::is_control)
        })
        .ok_or_else(|| Violation::new(field, "has no sender address (From)"))?;
    let from_name = clean(sender.and_then(|mailbox| mailbox.name()).unwrap_or_default(), 200);
    let subject = clean(message.subject().unwrap_or_default(), 300);
    let body = clean(message.body_text(0).as_deref().unwrap_or_default(), MAX_BODY);
    let mut attachments = Vec::new();
    for part in message.attachments().take(MAX_ATTACHMENTS) {
        let media_type = part
            .content_type()
            .map(|kind| match kind.subtype() {
                Some(subtype) => format!("{}/{}", kind.ctype(), subtype),
                None => kind.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        attachments.push(AttachmentRef {
            name: clean(part.attachment_name().unwrap_or("attachment"), 255),
            media_type: clean(&media_type, 255),
            size_bytes: i64::try_from(part.contents().len()).unwrap_or(i64::MAX),
            url: String::new(),
        });
    }
    if subject.is_empty() && body.is_empty() && attachments.is_empty() {
        return Err(Violation::new(field, "has no subject, body or attachment"));
    }
    let mut thread: Vec<String> = Vec::new();
    let mut references = texts(message.references());
    references.reverse();
    for id in texts(message.in_reply_to()).into_iter().chain(references) {
        let id = bracketless(id);
        if !id.is_empty() && !thread.contains(&id) && thread.len() < MAX_THREAD_IDS {
            thread.push(id);
        }
    }
    let message_id = match message.message_id().map(bracketless).filter(|id| !id.is_empty()) {
        Some(id) => id,
        None => format!("sha256-{:x}@rapport.invalid", Sha256::digest(raw)),
    };
    Ok(Inbound { message_id, from_address, from_name, subject, thread, body, attachments })
}

/// The texts of a header holding one or several message ids.
fn texts<'m>(value: &'m HeaderValue<'m>) -> Vec<&'m str> {
    match value {
        HeaderValue::Text(text) => vec![text.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(AsRef::as_ref).collect(),
        _ => Vec::new(),
    }
}

/// The case number a subject names (`[CASE-1042]` or `CASE-1042` anywhere).
pub fn number_in_subject(prefix: &str, subject: &str) -> Option<i64> {
    let lower = subject.to_lowercase();
    let wanted = prefix.to_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&wanted) {
        let start = from + at + wanted.len();
        let digits: String = lower[start..].chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && digits.len() <= 18 {
            return digits.parse().ok();
        }
        from = start;
    }
    None
}

/// The subject of mail about case `number`: `Re: [CASE-1042] …` (a
/// requester's client keeps the number when answering).
pub fn reply_subject(number: &str, subject: &str) -> String {
    format!("Re: [{number}] {subject}")
}

/// The body of an agent's public reply by mail.
pub fn reply_body(number: &str, body: &str) -> String {
    format!("{body}\n\n--\nReply to this email to add to {number}.\n")
}

/// The body of the mail telling a requester their case is resolved, with
/// the survey link when there is one.
pub fn resolution_body(number: &str, subject: &str, survey_link: Option<&str>) -> String {
    let mut body = format!(
        "Your case {number} ({subject}) has been resolved.\n\nIf it is not, reply to this email and it will be reopened.\n"
    );
    if let Some(link) = survey_link {
        body.push_str(&format!("\nHow did we do? Rate our help (one click, no login): {link}\n"));
    }
    body
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MULTIPART: &str = "From: =?UTF-8?B?w4lsaXNl?= <Elise@Example.COM>\r\n\
        To: support@rapport.test\r\n\
        Subject: =?UTF-8?Q?R=C3=A9:_[CASE-1042]_Printer?=\r\n\
        Message-ID: <abc@mail.example.com>\r\n\
        In-Reply-To: <case-1@rapport.test>\r\n\
        References: <first@x> <case-1@rapport.test>\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
        --b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        Il imprime des pages blanches =E2=80=94 encore.\r\n\
        --b1\r\nContent-Type: image/png; name=\"shot.png\"\r\nContent-Disposition: attachment; filename=\"shot.png\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--b1--\r\n";

    #[test]
    fn a_multipart_message_gives_its_sender_subject_body_thread_and_attachments() {
        let inbound = parse(MULTIPART.as_bytes()).unwrap();
        assert_eq!(inbound.message_id, "abc@mail.example.com");
        assert_eq!(
            (inbound.from_address.as_str(), inbound.from_name.as_str()),
            ("elise@example.com", "Élise")
        );
        assert_eq!(inbound.subject, "Ré: [CASE-1042] Printer");
        assert_eq!(inbound.body, "Il imprime des pages blanches — encore.");
        assert_eq!(inbound.thread, ["case-1@rapport.test", "first@x"]);
        assert_eq!(inbound.attachments.len(), 1);
        let attachment = &inbound.attachments[0];
        assert_eq!(
            (attachment.name.as_str(), attachment.media_type.as_str(), attachment.size_bytes),
            ("shot.png", "image/png", 11)
        );
        assert_eq!(number_in_subject("CASE-", &inbound.subject), Some(1042));
    }

    #[test]
    fn malformed_or_oversized_messages_are_refused() {
        assert!(parse(b"").is_err());
        assert!(parse(b"Subject: no sender\r\n\r\nhello").is_err());
        assert!(parse(b"From: nobody\r\nSubject: x\r\n\r\nbody").is_err());
        assert!(parse(b"From: a@b.c\r\n\r\n").is_err());
        assert!(parse(&vec![b'a'; MAX_MESSAGE_BYTES + 1]).is_err());
        // No Message-ID: a digest stands in, the same for the same bytes.
        let raw = b"From: a@b.c\r\nSubject: hi\r\n\r\nbody";
        assert_eq!(parse(raw).unwrap().message_id, parse(raw).unwrap().message_id);
        assert!(parse(raw).unwrap().message_id.starts_with("sha256-"));
    }

    #[test]
    fn the_case_number_is_found_anywhere_in_the_subject() {
        assert_eq!(number_in_subject("CASE-", "Re: Re: case-7 still broken"), Some(7));
        assert_eq!(number_in_subject("CASE-", "Casework CASE-x CASE-12"), Some(12));
        assert_eq!(number_in_subject("CASE-", "no number"), None);
    }
}
