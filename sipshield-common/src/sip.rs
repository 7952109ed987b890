//! SIP request methods as the XDP program classifies them.

/// Slot of a per-source method counter (`SourceStats::methods`).
///
/// `Response` is any message starting with `SIP/2.0`; `Other` is a payload on a
/// SIP port that starts with none of the known words; `Tls` counts packets to a
/// port configured as source-only (5061), whose payload cannot be read.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Register = 0,
    Invite = 1,
    Options = 2,
    Subscribe = 3,
    Notify = 4,
    Message = 5,
    Ack = 6,
    Bye = 7,
    Cancel = 8,
    Info = 9,
    Prack = 10,
    Refer = 11,
    Publish = 12,
    Update = 13,
    Response = 14,
    Other = 15,
    Tls = 16,
    /// A payload of CR/LF only: the RFC 5626 keep-alive ("\r\n\r\n").
    KeepAlive = 17,
}

impl Method {
    pub const COUNT: usize = 18;

    pub const ALL: [Method; Self::COUNT] = [
        Method::Register,
        Method::Invite,
        Method::Options,
        Method::Subscribe,
        Method::Notify,
        Method::Message,
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Info,
        Method::Prack,
        Method::Refer,
        Method::Publish,
        Method::Update,
        Method::Response,
        Method::Other,
        Method::Tls,
        Method::KeepAlive,
    ];

    /// The request-line word (or a label for the pseudo-methods).
    pub const fn name(self) -> &'static str {
        match self {
            Method::Register => "REGISTER",
            Method::Invite => "INVITE",
            Method::Options => "OPTIONS",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Message => "MESSAGE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Update => "UPDATE",
            Method::Response => "response",
            Method::Other => "other",
            Method::Tls => "tls",
            Method::KeepAlive => "keepalive",
        }
    }
}
