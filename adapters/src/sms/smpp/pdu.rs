//! SMPP 3.4 PDUs (the v3.4 specification, issue 2, sections 3 and 4): the few an ESME bound as a
//! transceiver needs, as bytes and back. Nothing here touches a socket.
//!
//! Every PDU is a 16-octet header (length, command id, status, sequence number, big-endian) and a
//! body of C-octet strings (NUL-terminated), integers and, at the end, optional TLVs.
//!
//! No `Debug` outside tests: a short message holds a phone number and a child's words.

use thiserror::Error;

/// Command ids (section 5.1.2.1).
pub mod command {
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
    pub const DELIVER_SM: u32 = 0x0000_0005;
    pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
    pub const UNBIND: u32 = 0x0000_0006;
    pub const UNBIND_RESP: u32 = 0x8000_0006;
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
}

/// Command status values this ESME sends or acts on (section 5.1.3).
pub mod status {
    pub const OK: u32 = 0x0000_0000;
    /// Invalid command length.
    pub const INVALID_LENGTH: u32 = 0x0000_0002;
    /// Invalid command id.
    pub const INVALID_COMMAND: u32 = 0x0000_0003;
    pub const SYSTEM_ERROR: u32 = 0x0000_0008;
    pub const MESSAGE_QUEUE_FULL: u32 = 0x0000_0014;
    pub const SUBMIT_FAILED: u32 = 0x0000_0045;
    pub const THROTTLED: u32 = 0x0000_0058;
    /// "ESME receiver temporary app error": the SMSC should deliver the message again later.
    pub const TEMPORARY_APP_ERROR: u32 = 0x0000_0064;
}

/// The header's size; also the smallest PDU.
pub const HEADER_LEN: usize = 16;
/// The largest PDU read: submit_sm and deliver_sm stay far below it (a `message_payload` may
/// carry up to 64 KiB).
pub const MAX_LEN: usize = 70_000;
/// SMPP 3.4.
const INTERFACE_VERSION: u8 = 0x34;
/// The TLV that carries a long message instead of `short_message` (section 5.3.2.32).
const MESSAGE_PAYLOAD: u16 = 0x0424;

/// Why bytes are not a PDU.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PduError {
    #[error("the SMPP PDU is shorter than its fields ({0})")]
    Truncated(&'static str),
    #[error("the SMPP PDU's length {0} is outside 16..={MAX_LEN}")]
    BadLength(usize),
}

/// A type of number, numbering plan and address (source or destination).
#[derive(Clone, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub struct Address {
    pub ton: u8,
    pub npi: u8,
    pub addr: String,
}

/// The body shared by `submit_sm` and `deliver_sm` (sections 4.4.1 and 4.6.1).
#[derive(Clone, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub struct ShortMessage {
    pub service_type: String,
    pub source: Address,
    pub destination: Address,
    /// Bit 0x40: `short_message` starts with a user data header; bits 0x3C: the message type
    /// (0x04: an SMSC delivery receipt).
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present: u8,
    /// 0: GSM-7 (the SMSC's default alphabet), 3: Latin-1, 8: UCS-2.
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    /// The user data (with its UDH when `esm_class` says so); from `message_payload` when the
    /// sender put it there instead.
    pub short_message: Vec<u8>,
}

/// What a PDU says.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Body {
    BindTransceiver {
        system_id: String,
        password: String,
        system_type: String,
    },
    BindTransceiverResp {
        system_id: String,
    },
    SubmitSm(ShortMessage),
    SubmitSmResp {
        message_id: String,
    },
    DeliverSm(ShortMessage),
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Unbind,
    UnbindResp,
    GenericNack,
    /// A command this ESME does not use (answered with `generic_nack` when it is a request).
    Other(u32),
}

/// One PDU.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub struct Pdu {
    pub status: u32,
    pub sequence: u32,
    pub body: Body,
}

impl Pdu {
    /// A request (status 0).
    pub fn request(sequence: u32, body: Body) -> Pdu {
        Pdu {
            status: status::OK,
            sequence,
            body,
        }
    }

    pub fn command_id(&self) -> u32 {
        match &self.body {
            Body::BindTransceiver { .. } => command::BIND_TRANSCEIVER,
            Body::BindTransceiverResp { .. } => command::BIND_TRANSCEIVER_RESP,
            Body::SubmitSm(_) => command::SUBMIT_SM,
            Body::SubmitSmResp { .. } => command::SUBMIT_SM_RESP,
            Body::DeliverSm(_) => command::DELIVER_SM,
            Body::DeliverSmResp => command::DELIVER_SM_RESP,
            Body::EnquireLink => command::ENQUIRE_LINK,
            Body::EnquireLinkResp => command::ENQUIRE_LINK_RESP,
            Body::Unbind => command::UNBIND,
            Body::UnbindResp => command::UNBIND_RESP,
            Body::GenericNack => command::GENERIC_NACK,
            Body::Other(id) => *id,
        }
    }

    /// The PDU as sent on the wire, header included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0; HEADER_LEN];
        match &self.body {
            Body::BindTransceiver {
                system_id,
                password,
                system_type,
            } => {
                cstring(&mut out, system_id);
                cstring(&mut out, password);
                cstring(&mut out, system_type);
                // interface_version, addr_ton, addr_npi, address_range (empty: any).
                out.extend_from_slice(&[INTERFACE_VERSION, 0, 0, 0]);
            }
            Body::BindTransceiverResp { system_id } => cstring(&mut out, system_id),
            Body::SubmitSm(sm) | Body::DeliverSm(sm) => short_message(&mut out, sm),
            Body::SubmitSmResp { message_id } => cstring(&mut out, message_id),
            // deliver_sm_resp's message_id is unused and NULL (section 4.6.2).
            Body::DeliverSmResp => out.push(0),
            Body::EnquireLink
            | Body::EnquireLinkResp
            | Body::Unbind
            | Body::UnbindResp
            | Body::GenericNack
            | Body::Other(_) => {}
        }
        let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
        out[0..4].copy_from_slice(&len.to_be_bytes());
        out[4..8].copy_from_slice(&self.command_id().to_be_bytes());
        out[8..12].copy_from_slice(&self.status.to_be_bytes());
        out[12..16].copy_from_slice(&self.sequence.to_be_bytes());
        out
    }

    /// Reads one whole PDU (its length field included). A response with an error status may
    /// come without a body (section 3.3), which reads as empty fields.
    pub fn decode(bytes: &[u8]) -> Result<Pdu, PduError> {
        let mut r = Reader { bytes, at: 0 };
        let len = r.u32("command_length")? as usize;
        if !(HEADER_LEN..=MAX_LEN).contains(&len) || len != bytes.len() {
            return Err(PduError::BadLength(len));
        }
        let id = r.u32("command_id")?;
        let status = r.u32("command_status")?;
        let sequence = r.u32("sequence_number")?;
        let body = match id {
            command::BIND_TRANSCEIVER => Body::BindTransceiver {
                system_id: r.cstring("system_id")?,
                password: r.cstring("password")?,
                system_type: r.cstring("system_type")?,
            },
            command::BIND_TRANSCEIVER_RESP => Body::BindTransceiverResp {
                system_id: r.optional_cstring(),
            },
            command::SUBMIT_SM => Body::SubmitSm(read_short_message(&mut r)?),
            command::DELIVER_SM => Body::DeliverSm(read_short_message(&mut r)?),
            command::SUBMIT_SM_RESP => Body::SubmitSmResp {
                message_id: r.optional_cstring(),
            },
            command::DELIVER_SM_RESP => Body::DeliverSmResp,
            command::ENQUIRE_LINK => Body::EnquireLink,
            command::ENQUIRE_LINK_RESP => Body::EnquireLinkResp,
            command::UNBIND => Body::Unbind,
            command::UNBIND_RESP => Body::UnbindResp,
            command::GENERIC_NACK => Body::GenericNack,
            other => Body::Other(other),
        };
        Ok(Pdu {
            status,
            sequence,
            body,
        })
    }
}

/// Is `command_id` a request (answered by the peer) rather than a response?
pub fn is_request(command_id: u32) -> bool {
    command_id & 0x8000_0000 == 0
}

fn cstring(out: &mut Vec<u8>, s: &str) {
    // Config validation keeps NULs out; one here would only cut the field short.
    out.extend(s.bytes().take_while(|&b| b != 0));
    out.push(0);
}

fn short_message(out: &mut Vec<u8>, sm: &ShortMessage) {
    cstring(out, &sm.service_type);
    out.extend_from_slice(&[sm.source.ton, sm.source.npi]);
    cstring(out, &sm.source.addr);
    out.extend_from_slice(&[sm.destination.ton, sm.destination.npi]);
    cstring(out, &sm.destination.addr);
    out.extend_from_slice(&[sm.esm_class, sm.protocol_id, sm.priority_flag]);
    cstring(out, &sm.schedule_delivery_time);
    cstring(out, &sm.validity_period);
    out.extend_from_slice(&[
        sm.registered_delivery,
        sm.replace_if_present,
        sm.data_coding,
        sm.sm_default_msg_id,
    ]);
    if sm.short_message.len() <= 254 {
        out.push(sm.short_message.len() as u8);
        out.extend_from_slice(&sm.short_message);
    } else {
        // Too long for short_message: sent in message_payload instead (section 5.3.2.32).
        out.push(0);
        out.extend_from_slice(&MESSAGE_PAYLOAD.to_be_bytes());
        let len = u16::try_from(sm.short_message.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&sm.short_message[..usize::from(len)]);
    }
}

fn read_short_message(r: &mut Reader<'_>) -> Result<ShortMessage, PduError> {
    let mut sm = ShortMessage {
        service_type: r.cstring("service_type")?,
        ..ShortMessage::default()
    };
    sm.source = Address {
        ton: r.u8("source_addr_ton")?,
        npi: r.u8("source_addr_npi")?,
        addr: r.cstring("source_addr")?,
    };
    sm.destination = Address {
        ton: r.u8("dest_addr_ton")?,
        npi: r.u8("dest_addr_npi")?,
        addr: r.cstring("destination_addr")?,
    };
    sm.esm_class = r.u8("esm_class")?;
    sm.protocol_id = r.u8("protocol_id")?;
    sm.priority_flag = r.u8("priority_flag")?;
    sm.schedule_delivery_time = r.cstring("schedule_delivery_time")?;
    sm.validity_period = r.cstring("validity_period")?;
    sm.registered_delivery = r.u8("registered_delivery")?;
    sm.replace_if_present = r.u8("replace_if_present_flag")?;
    sm.data_coding = r.u8("data_coding")?;
    sm.sm_default_msg_id = r.u8("sm_default_msg_id")?;
    let len = usize::from(r.u8("sm_length")?);
    sm.short_message = r.take(len, "short_message")?.to_vec();
    // Optional TLVs: only message_payload matters here; the rest are skipped.
    while r.remaining() >= 4 {
        let tag = r.u16("tlv tag")?;
        let len = usize::from(r.u16("tlv length")?);
        let value = r.take(len, "tlv value")?;
        if tag == MESSAGE_PAYLOAD && sm.short_message.is_empty() {
            sm.short_message = value.to_vec();
        }
    }
    Ok(sm)
}

/// A cursor over a PDU's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PduError> {
        if self.remaining() < n {
            return Err(PduError::Truncated(field));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, PduError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, PduError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn cstring(&mut self, field: &'static str) -> Result<String, PduError> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(PduError::Truncated(field))?;
        self.at += end + 1;
        // Addresses and ids are ASCII; anything else is kept, not trusted.
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    /// A C-octet string that an error response may leave out.
    fn optional_cstring(&mut self) -> String {
        self.cstring("optional").unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn bind_transceiver_is_byte_exact() {
        let pdu = Pdu::request(
            1,
            Body::BindTransceiver {
                system_id: "hl".into(),
                password: "pw".into(),
                system_type: String::new(),
            },
        );
        let bytes = hex("0000001b 00000009 00000000 00000001
             686c00 707700 00 34 00 00 00");
        assert_eq!(pdu.encode(), bytes);
        assert_eq!(Pdu::decode(&bytes).unwrap(), pdu);
    }

    #[test]
    fn responses_decode_with_and_without_a_body() {
        let ok = hex("00000015 80000009 00000000 00000001 736d736300");
        assert_eq!(
            Pdu::decode(&ok).unwrap().body,
            Body::BindTransceiverResp {
                system_id: "smsc".into()
            }
        );
        // An error response may come without its body (section 3.3).
        let refused = Pdu::decode(&hex("00000010 80000009 0000000d 00000001")).unwrap();
        assert_eq!(refused.status, 0x0d);
        let resp = Pdu::decode(&hex("00000013 80000004 00000000 00000007 413100")).unwrap();
        assert_eq!(
            (resp.sequence, resp.body),
            (
                7,
                Body::SubmitSmResp {
                    message_id: "A1".into()
                }
            )
        );
        let nack = Pdu::decode(&hex("00000010 80000000 00000003 00000009")).unwrap();
        assert_eq!((nack.status, nack.body), (3, Body::GenericNack));
    }

    #[test]
    fn header_only_pdus_round_trip() {
        for (body, id) in [
            (Body::EnquireLink, "00000015"),
            (Body::EnquireLinkResp, "80000015"),
            (Body::Unbind, "00000006"),
            (Body::UnbindResp, "80000006"),
            (Body::GenericNack, "80000000"),
        ] {
            let pdu = Pdu::request(0x7fff_ffff, body);
            let bytes = hex(&format!("00000010 {id} 00000000 7fffffff"));
            assert_eq!(pdu.encode(), bytes);
            assert_eq!(Pdu::decode(&bytes).unwrap(), pdu);
        }
        let resp = Pdu {
            status: status::TEMPORARY_APP_ERROR,
            sequence: 2,
            body: Body::DeliverSmResp,
        };
        assert_eq!(resp.encode(), hex("00000011 80000005 00000064 00000002 00"));
    }

    #[test]
    fn submit_sm_is_byte_exact() {
        let sm = ShortMessage {
            source: Address {
                ton: 3,
                npi: 0,
                addr: "116".into(),
            },
            destination: Address {
                ton: 1,
                npi: 1,
                addr: "373".into(),
            },
            esm_class: 0x40,
            data_coding: 8,
            short_message: vec![5, 0, 3, 9, 2, 1, 0x04, 0x1f],
            ..ShortMessage::default()
        };
        let pdu = Pdu::request(3, Body::SubmitSm(sm));
        let bytes = hex("0000002f 00000004 00000000 00000003
             00 03 00 31313600 01 01 33373300 40 00 00 00 00 00 00 08 00
             08 050003090201 041f");
        assert_eq!(pdu.encode(), bytes);
        assert_eq!(Pdu::decode(&bytes).unwrap(), pdu);
    }

    #[test]
    fn deliver_sm_reads_message_payload_and_skips_other_tlvs() {
        let bytes = hex("0000003a 00000005 00000000 00000004
             00 01 01 33373300 00 00 31313600 00 00 00 00 00 00 00 00 00
             00
             020400020001
             04240004 0041 0042
             0427000102");
        let pdu = Pdu::decode(&bytes).unwrap();
        let Body::DeliverSm(sm) = pdu.body else {
            panic!("not a deliver_sm")
        };
        assert_eq!(sm.source.addr, "373");
        assert_eq!(sm.destination.addr, "116");
        assert_eq!(sm.short_message, [0, 0x41, 0, 0x42]);
    }

    #[test]
    fn broken_pdus_are_errors_not_panics() {
        assert_eq!(
            Pdu::decode(&hex("0000000f 00000015 00000000 000000")),
            Err(PduError::BadLength(15))
        );
        assert!(Pdu::decode(&hex("00000014 00000009 00000000 00000001 6869")).is_err());
        assert!(Pdu::decode(&hex("00000011 00000005 00000000 00000001 00")).is_err());
        assert_eq!(
            Pdu::decode(&hex("00000010 00000103 00000000 00000001"))
                .unwrap()
                .body,
            Body::Other(0x103)
        );
    }
}
