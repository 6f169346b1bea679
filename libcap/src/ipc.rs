//! Typed IPC: requests and replies as serde types, and the server loop.
//!
//! A service's interface is one crate (see `userland/echo-api`): an enum of requests, the
//! reply types, and the label numbers. Clients [`call`] with a request and get a typed reply;
//! servers hand [`serve`] a function from (badge, request) to reply and never write the
//! receive/reply loop themselves.
//!
//! Encoding: postcard, packed little-endian into the message words: the first
//! [`REGISTER_BYTES`] in registers (a message that fits them takes the kernel's fast path),
//! the rest, up to [`MAX_BYTES`], in this thread's IPC buffer, which the kernel copies into
//! the receiver's. A request that does not fit is `MessageTooLong` at the client; bytes a
//! server cannot decode are answered with [`LABEL_BAD_REQUEST`] and the server goes on
//! serving. Bounded strings and vectors for messages: [`heapless`]'s `String<N>` and
//! `Vec<T, N>` (re-exported as `libcap::heapless`), which postcard encodes as a length and
//! the bytes, so a 1 KiB value costs 1 KiB, not `N`.
//!
//! A long message's words live in the IPC buffer until the next IPC: [`call`] and [`serve`]
//! decode at once; code that receives with [`sys`] directly must [`decode`] before its next
//! syscall that receives.

use abi::ipc_buffer::{MSG_OFFSET, WORD};
use abi::msg::{MAX_MESSAGE_WORDS, REGISTER_WORDS};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::raw;
use crate::sys::{self, Message};
use crate::{Badge, CapSlot, ErrorCode};

/// Bytes one typed message can carry: the ABI's longest message.
pub const MAX_BYTES: usize = MAX_MESSAGE_WORDS * 8;
/// Bytes that travel in registers: a message this short never touches the IPC buffer.
pub const REGISTER_BYTES: usize = REGISTER_WORDS * 8;
/// The label of a reply to a request the server could not decode.
pub const LABEL_BAD_REQUEST: u32 = u32::MAX;
/// The label of a normal reply.
pub const LABEL_OK: u32 = 0;

/// The IPC-buffer word that holds message word `index` (`index >= REGISTER_WORDS`).
fn buffer_index(index: usize) -> usize {
    MSG_OFFSET / WORD + index
}

/// Encodes `value` as a message with `label`: registers first, then the IPC buffer.
/// `MessageTooLong` past [`MAX_BYTES`], or past [`REGISTER_BYTES`] for a thread without an
/// IPC buffer (as the kernel would answer).
///
/// ```
/// use libcap::heapless::String;
/// use libcap::ipc;
///
/// let message = ipc::encode(7, &(42u32, true)).unwrap();
/// assert_eq!(message.label(), 7);
/// assert_eq!(ipc::decode::<(u32, bool)>(&message), Ok((42, true)));
/// // More than the longest message is refused, not cut short.
/// let mut huge: String<4096> = String::new();
/// for _ in 0..ipc::MAX_BYTES {
///     huge.push('x').unwrap();
/// }
/// assert_eq!(ipc::encode(7, &huge).err(), Some(libcap::ErrorCode::MessageTooLong));
/// ```
pub fn encode<T: Serialize>(label: u32, value: &T) -> Result<Message, ErrorCode> {
    let mut bytes = [0u8; MAX_BYTES];
    let used = postcard::to_slice(value, &mut bytes).map_err(|_| ErrorCode::MessageTooLong)?.len();
    let length = used.div_ceil(8);
    let mut registers = [0u64; REGISTER_WORDS];
    for (index, chunk) in bytes.chunks_exact(8).take(length).enumerate() {
        let mut buffer = [0u8; 8];
        buffer.copy_from_slice(chunk);
        let word = u64::from_le_bytes(buffer);
        match registers.get_mut(index) {
            Some(register) => *register = word,
            None => raw::ipc_buffer_write(buffer_index(index), word).map_err(|_| ErrorCode::MessageTooLong)?,
        }
    }
    Message::long(label, registers, length)
}

/// Decodes a message's words as a `T` (those past the registers from this thread's IPC
/// buffer). `InvalidArgument` if they are not one.
pub fn decode<T: DeserializeOwned>(message: &Message) -> Result<T, ErrorCode> {
    let mut bytes = [0u8; MAX_BYTES];
    let length = message.info().length().min(MAX_MESSAGE_WORDS);
    for (index, chunk) in bytes.chunks_exact_mut(8).take(length).enumerate() {
        let word = match message.words().get(index) {
            Some(word) => *word,
            None => raw::ipc_buffer_read(buffer_index(index)).map_err(|_| ErrorCode::InvalidArgument)?,
        };
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    postcard::from_bytes(&bytes).map_err(|_| ErrorCode::InvalidArgument)
}

/// Why a typed call did not bring back the server's answer.
///
/// `?` turns it into an [`ErrorCode`] (a transport error as itself, the rest as
/// `InvalidArgument`), so a `main` returning `Result<(), ErrorCode>` can still use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The kernel refused the IPC: the endpoint cap (`EmptySlot`, `WrongObjectType`,
    /// `InsufficientRights`), the message (`MessageTooLong`), or the server died holding
    /// the call (`PeerGone`).
    Transport(ErrorCode),
    /// The server could not decode the request: the two sides disagree on the interface.
    BadRequest,
    /// The server could not encode its answer (it did not fit the longest message), or its
    /// answer did not decode as the reply this client expects.
    BadReply,
}

impl From<ErrorCode> for CallError {
    fn from(code: ErrorCode) -> CallError {
        CallError::Transport(code)
    }
}

impl From<CallError> for ErrorCode {
    fn from(error: CallError) -> ErrorCode {
        match error {
            CallError::Transport(code) => code,
            CallError::BadRequest | CallError::BadReply => ErrorCode::InvalidArgument,
        }
    }
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CallError::Transport(code) => write!(f, "the call failed: {}", code.as_str()),
            CallError::BadRequest => f.write_str("the server could not decode the request"),
            CallError::BadReply => f.write_str("the server's reply was not the expected one"),
        }
    }
}

/// The label of the answer of a server whose reply did not fit ([`serve`]): the server's
/// fault, reported to the client as [`CallError::BadReply`].
pub const LABEL_BAD_REPLY: u32 = u32::MAX - 1;

/// Calls the service behind `endpoint` with `request` (sent with `label`) and decodes its
/// reply.
pub fn call<Req: Serialize, Resp: DeserializeOwned>(endpoint: CapSlot, label: u32, request: &Req) -> Result<Resp, CallError> {
    call_with_caps(endpoint, label, request, Caps::default()).map(|(reply, _)| reply)
}

/// The two answers a server loop gives when it cannot give the handler's: empty messages,
/// which always fit, made before the loop so that it has no error path of its own.
fn failure_replies() -> Result<(Message, Message), ErrorCode> {
    Ok((Message::new(LABEL_BAD_REQUEST, &[])?, Message::new(LABEL_BAD_REPLY, &[])?))
}

/// Serves `endpoint` forever: receive a request, decode it as a `Req`, answer with what
/// `handle(badge, label, request)` returns. Undecodable requests get a
/// [`LABEL_BAD_REQUEST`] reply, answers too long to send a [`LABEL_BAD_REPLY`] one; the loop
/// never stops for a client's mistake. Returns only if
/// the endpoint itself fails (for instance, its cap was deleted).
pub fn serve<Req, Resp, F>(endpoint: CapSlot, mut handle: F) -> ErrorCode
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnMut(Badge, u32, Req) -> Resp,
{
    let (bad_request, bad_reply) = match failure_replies() {
        Ok(replies) => replies,
        Err(error) => return error,
    };
    let mut received = match sys::recv(endpoint) {
        Ok(received) => received,
        Err(error) => return error,
    };
    loop {
        let reply = match decode::<Req>(&received.message) {
            // An answer that does not fit is the server's bug; the caller learns it as such.
            Ok(request) => encode(LABEL_OK, &handle(received.badge, received.message.label(), request)).unwrap_or(bad_reply),
            Err(_) => bad_request,
        };
        received = match sys::reply_recv(endpoint, &reply) {
            Ok(received) => received,
            Err(error) => return error,
        };
    }
}

// ---- Caps with typed messages -------------------------------------------------------------

/// Caps a typed call carries: `send` go with the request (the caller's endpoint cap needs
/// Grant), caps in the reply land in the empty slots `receive` (it needs GrantReply). At
/// most [`abi::msg::MAX_CAPS`] each.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caps<'a> {
    /// Slots of the caps to send; each arrives as a copy derived from ours.
    pub send: &'a [CapSlot],
    /// Empty slots for the caps of the reply.
    pub receive: &'a [CapSlot],
}

/// The caps a server sends back with a reply (copies derived from its own).
pub type SendCaps = heapless::Vec<CapSlot, { abi::msg::MAX_CAPS }>;

/// [`call`] with caps both ways: returns the reply and how many caps came with it (in the
/// first slots of `caps.receive`).
pub fn call_with_caps<Req: Serialize, Resp: DeserializeOwned>(
    endpoint: CapSlot,
    label: u32,
    request: &Req,
    caps: Caps<'_>,
) -> Result<(Resp, usize), CallError> {
    let reply = sys::call_with_caps(endpoint, &encode(label, request)?, caps.send, caps.receive)?;
    match reply.label() {
        LABEL_BAD_REQUEST => Err(CallError::BadRequest),
        LABEL_BAD_REPLY => Err(CallError::BadReply),
        _ => Ok((decode(&reply).map_err(|_| CallError::BadReply)?, reply.info().caps())),
    }
}

/// [`serve`] for requests and replies that carry caps. Caps of a request land in `receive`
/// (empty slots of the server); `handle(badge, label, request, arrived)` gets the ones that
/// came and returns the reply with the caps to send back. The arrived caps are the
/// handler's to move elsewhere if it keeps them: whatever is still in `receive` after the
/// reply is deleted before the next receive, so the next request's caps find their slots
/// empty. (So the reply and the receive are two syscalls here, not one `ReplyRecv`.) A
/// reply whose caps the caller cannot take goes again without them: the caller learns from
/// the count of caps that came.
pub fn serve_with_caps<Req, Resp, F>(endpoint: CapSlot, receive: &[CapSlot], mut handle: F) -> ErrorCode
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnMut(Badge, u32, Req, &[CapSlot]) -> (Resp, SendCaps),
{
    let (bad_request, bad_reply) = match failure_replies() {
        Ok(replies) => replies,
        Err(error) => return error,
    };
    loop {
        if let Err(error) = sys::set_transfer_slots(&[], receive) {
            return error;
        }
        let received = match sys::recv(endpoint) {
            Ok(received) => received,
            Err(error) => return error,
        };
        let arrived = receive.get(..received.message.info().caps()).unwrap_or(&[]);
        let (reply, send) = match decode::<Req>(&received.message) {
            Ok(request) => {
                let (answer, send) = handle(received.badge, received.message.label(), request, arrived);
                match encode(LABEL_OK, &answer) {
                    Ok(message) => (message, send),
                    Err(_) => (bad_reply, SendCaps::new()),
                }
            }
            Err(_) => (bad_request, SendCaps::new()),
        };
        // Nobody to answer (the caller died) is no reason to stop serving.
        if sys::reply_with_caps(&reply, &send).is_err() && !send.is_empty() {
            let _ = sys::reply_with_caps(&reply, &[]);
        }
        for slot in receive {
            // Only what the handler left (asking first: deleting an empty slot would be a
            // refused syscall, which the kernel records as a denial).
            if sys::cap_identify(*slot).is_ok() {
                let _ = sys::cap_delete(*slot);
            }
        }
    }
}
