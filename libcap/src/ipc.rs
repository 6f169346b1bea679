//! Typed IPC: requests and replies as serde types, and the server loop.
//!
//! A service's interface is one crate (see `userland/echo-api`): an enum of requests, the
//! reply types, and the label numbers. Clients [`call`] with a request and get a typed reply;
//! servers hand [`serve`] a function from (badge, request) to reply and never write the
//! receive/reply loop themselves.
//!
//! Encoding: postcard, packed little-endian into the message words. A message carries at
//! most [`MAX_BYTES`] bytes (the register words; the fast path). A request that does not
//! fit is `MessageTooLong` at the client; bytes a server cannot decode are answered with
//! [`LABEL_BAD_REQUEST`] and the server goes on serving.

use abi::msg::REGISTER_WORDS;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sys::{self, Message};
use crate::{Badge, CapSlot, ErrorCode};

/// Bytes one typed message can carry.
pub const MAX_BYTES: usize = REGISTER_WORDS * 8;
/// The label of a reply to a request the server could not decode.
pub const LABEL_BAD_REQUEST: u32 = u32::MAX;
/// The label of a normal reply.
pub const LABEL_OK: u32 = 0;

/// Encodes `value` as a message with `label`.
///
/// ```
/// use libcap::ipc;
///
/// let message = ipc::encode(7, &(42u32, true)).unwrap();
/// assert_eq!(message.label(), 7);
/// assert_eq!(ipc::decode::<(u32, bool)>(&message), Ok((42, true)));
/// // More than the register words is refused, not cut short.
/// assert_eq!(ipc::encode(7, &[u64::MAX; 8]).err(), Some(libcap::ErrorCode::MessageTooLong));
/// ```
pub fn encode<T: Serialize>(label: u32, value: &T) -> Result<Message, ErrorCode> {
    let mut bytes = [0u8; MAX_BYTES];
    let used = postcard::to_slice(value, &mut bytes).map_err(|_| ErrorCode::MessageTooLong)?.len();
    let mut words = [0u64; REGISTER_WORDS];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut buffer = [0u8; 8];
        buffer.copy_from_slice(chunk);
        *word = u64::from_le_bytes(buffer);
    }
    Message::new(label, words.get(..used.div_ceil(8)).unwrap_or(&words))
}

/// Decodes a message's words as a `T`. `InvalidArgument` if they are not one.
pub fn decode<T: DeserializeOwned>(message: &Message) -> Result<T, ErrorCode> {
    let mut bytes = [0u8; MAX_BYTES];
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(message.words()) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    postcard::from_bytes(&bytes).map_err(|_| ErrorCode::InvalidArgument)
}

/// Calls the service behind `endpoint` with `request` (sent with `label`) and decodes its
/// reply. A server that could not decode the request answers `InvalidArgument`.
pub fn call<Req: Serialize, Resp: DeserializeOwned>(endpoint: CapSlot, label: u32, request: &Req) -> Result<Resp, ErrorCode> {
    let reply = sys::call(endpoint, &encode(label, request)?)?;
    if reply.label() == LABEL_BAD_REQUEST {
        return Err(ErrorCode::InvalidArgument);
    }
    decode(&reply)
}

/// Serves `endpoint` forever: receive a request, decode it as a `Req`, answer with what
/// `handle(badge, label, request)` returns. Undecodable requests get a
/// [`LABEL_BAD_REQUEST`] reply; the loop never stops for a client's mistake. Returns only if
/// the endpoint itself fails (for instance, its cap was deleted).
pub fn serve<Req, Resp, F>(endpoint: CapSlot, mut handle: F) -> ErrorCode
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnMut(Badge, u32, Req) -> Resp,
{
    // An empty message always fits; made once, so the loop below has no error path of its own.
    let bad_request = match Message::new(LABEL_BAD_REQUEST, &[]) {
        Ok(message) => message,
        Err(error) => return error,
    };
    let mut received = match sys::recv(endpoint) {
        Ok(received) => received,
        Err(error) => return error,
    };
    loop {
        let reply = match decode::<Req>(&received.message) {
            // An answer that does not fit is the server's bug; the caller still gets one.
            Ok(request) => encode(LABEL_OK, &handle(received.badge, received.message.label(), request)).unwrap_or(bad_request),
            Err(_) => bad_request,
        };
        received = match sys::reply_recv(endpoint, &reply) {
            Ok(received) => received,
            Err(error) => return error,
        };
    }
}
