//! Sending an email: the MIME message of a rendered email, and SMTP with lettre.

use super::{QR_CID, Recipient, Rendered};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why a message could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again (4xx, connection, timeout).
    #[error("transient: {0}")]
    Transient(String),
    /// Never going to work (5xx, a bad address).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// The SMTP client and the sender address.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn from_settings(s: &platform::settings::NotifierSettings) -> anyhow::Result<Self> {
        let (transport, from) = platform::smtp::transport(s)?;
        Ok(Self { transport, from })
    }

    /// The MIME message: text and HTML alternatives; the HTML is `related` to the
    /// inline QR image (`cid:ticket-qr`) when there is a ticket.
    pub fn message(
        &self,
        event_id: &str,
        to: &Recipient,
        r: &Rendered,
    ) -> Result<Message, SendError> {
        let address = to
            .email
            .parse()
            .map_err(|e| SendError::Permanent(format!("bad recipient {:?}: {e}", to.email)))?;
        let mailbox = Mailbox::new((!to.name.is_empty()).then(|| to.name.clone()), address);
        let text = SinglePart::plain(r.text.clone());
        let html = SinglePart::html(r.html.clone());
        let body = match &r.ticket {
            Some((_, png)) => MultiPart::alternative().singlepart(text).multipart(
                MultiPart::related().singlepart(html).singlepart(
                    Attachment::new_inline(QR_CID.to_owned()).body(
                        png.clone(),
                        ContentType::parse("image/png").expect("static"),
                    ),
                ),
            ),
            None => MultiPart::alternative().singlepart(text).singlepart(html),
        };
        Message::builder()
            .from(self.from.clone())
            .to(mailbox)
            .subject(r.subject.clone())
            // The event id in the Message-ID: one event, one message, traceable.
            .message_id(Some(format!("<{event_id}@notifier.booking.local>")))
            .multipart(body)
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
    }

    /// Sends once; classifies the failure.
    pub async fn send(&self, msg: Message) -> Result<(), SendError> {
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}
