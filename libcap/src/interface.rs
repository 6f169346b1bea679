//! [`interface!`](macro@crate::interface): an IPC interface written once, its client stub and
//! server dispatch generated.
//!
//! Hubris's idol is the model, in the shape a `macro_rules!` allows: each operation is a
//! `fn` with named arguments and a reply type; the macro makes a module with the request and
//! reply enums (serde types, so messages up to [`crate::ipc::MAX_BYTES`] bytes, the long ones
//! through the IPC buffer), a `Client` whose methods call the server and check the reply
//! kind, a `Server` trait with one method per operation (given the caller's badge), and
//! `serve`, the receive loop that decodes each request and calls the trait. Errors: a call
//! returns [`CallError`](crate::ipc::CallError) (`Transport`, `BadRequest`, `BadReply`);
//! errors of the service itself are the operation's reply type, for instance a `Result`.
//!
//! An operation written `fn op(..) -> Reply, with caps;` carries caps: its client method
//! takes an [`ipc::Caps`](crate::ipc::Caps) (caps to send, empty slots for the caps of the
//! reply) and returns the reply with how many caps came; its server method gets the caps
//! that arrived and returns the caps to send back; `serve_with_caps` is its loop.
//!
//! The crate that writes an interface depends on `serde` with its `derive` feature (the
//! generated enums derive its traits by that name).

/// Declares an IPC interface. See [the module docs](mod@crate::interface).
///
/// ```
/// libcap::interface! {
///     /// A counter per client.
///     pub interface counter (label = 3) {
///         /// Adds `amount`; answers the new total.
///         fn add(amount: u64) -> u64;
///         /// The total, or `None` before the first `add`.
///         fn total() -> Option<u64>;
///         /// Sends the caps it is given straight back; answers how many.
///         fn bounce() -> u32, with caps;
///     }
/// }
///
/// // The server side: one method per operation, with the caller's badge.
/// struct Counters([u64; 4]);
/// impl counter::Server for Counters {
///     fn add(&mut self, badge: libcap::Badge, amount: u64) -> u64 {
///         let slot = &mut self.0[badge.value() as usize % 4];
///         *slot += amount;
///         *slot
///     }
///     fn total(&mut self, badge: libcap::Badge) -> Option<u64> {
///         Some(self.0[badge.value() as usize % 4]).filter(|&total| total > 0)
///     }
///     fn bounce(&mut self, _badge: libcap::Badge, arrived: &[libcap::CapSlot]) -> (u32, libcap::ipc::SendCaps) {
///         (arrived.len() as u32, arrived.iter().copied().collect())
///     }
/// }
///
/// // What travels: the generated request enum, as postcard bytes in the message words.
/// let message = libcap::ipc::encode(counter::LABEL, &counter::Request::add { amount: 5 }).unwrap();
/// let request: counter::Request = libcap::ipc::decode(&message).unwrap();
/// let mut server = Counters([0; 4]);
/// let (reply, caps) = counter::dispatch(&mut server, libcap::Badge::new(1), request, &[]);
/// assert!(matches!(reply, counter::Reply::add(5)) && caps.is_empty());
/// // A client: `counter::Client::new(caps::COUNTER).add(5)` calls the server behind the
/// // manifest's `counter` cap; `counter::serve(caps::COUNTER, &mut server)` is a server's loop.
/// ```
#[macro_export]
macro_rules! interface {
    // ---- one operation's pieces (internal) ----
    (@client $(#[$meta:meta])* $op:ident ($($arg:ident : $ty:ty),*) -> $ret:ty) => {
        $(#[$meta])*
        pub fn $op(&self, $( $arg: $ty ),*) -> Result<$ret, $crate::ipc::CallError> {
            match $crate::ipc::call(self.endpoint, LABEL, &Request::$op { $( $arg ),* })? {
                Reply::$op(reply) => Ok(reply),
                #[allow(unreachable_patterns)]
                _ => Err($crate::ipc::CallError::BadReply),
            }
        }
    };
    (@client $(#[$meta:meta])* $op:ident ($($arg:ident : $ty:ty),*) -> $ret:ty, caps) => {
        $(#[$meta])*
        ///
        /// Carries caps: `caps.send` go with the request, caps of the reply land in
        /// `caps.receive`; returns the reply and how many came.
        pub fn $op(&self, $( $arg: $ty, )* caps: $crate::ipc::Caps<'_>) -> Result<($ret, usize), $crate::ipc::CallError> {
            match $crate::ipc::call_with_caps(self.endpoint, LABEL, &Request::$op { $( $arg ),* }, caps)? {
                (Reply::$op(reply), arrived) => Ok((reply, arrived)),
                #[allow(unreachable_patterns)]
                _ => Err($crate::ipc::CallError::BadReply),
            }
        }
    };
    (@server $(#[$meta:meta])* $op:ident ($($arg:ident : $ty:ty),*) -> $ret:ty) => {
        $(#[$meta])*
        fn $op(&mut self, badge: $crate::Badge, $( $arg: $ty ),*) -> $ret;
    };
    (@server $(#[$meta:meta])* $op:ident ($($arg:ident : $ty:ty),*) -> $ret:ty, caps) => {
        $(#[$meta])*
        ///
        /// `arrived`: the caps that came with the request (move away any to keep); returns
        /// the reply and the caps to send with it.
        fn $op(&mut self, badge: $crate::Badge, $( $arg: $ty, )* arrived: &[$crate::CapSlot]) -> ($ret, $crate::ipc::SendCaps);
    };
    (@answer $server:ident, $badge:ident, $arrived:ident, $op:ident ($($arg:ident),*)) => {{
        let _ = $arrived;
        (Reply::$op($server.$op($badge, $( $arg ),*)), $crate::ipc::SendCaps::new())
    }};
    (@answer $server:ident, $badge:ident, $arrived:ident, $op:ident ($($arg:ident),*), caps) => {{
        let (reply, send) = $server.$op($badge, $( $arg, )* $arrived);
        (Reply::$op(reply), send)
    }};

    (
        $(#[$meta:meta])*
        $vis:vis interface $name:ident (label = $label:expr) {
            $(
                $(#[$op_meta:meta])*
                fn $op:ident ( $( $arg:ident : $ty:ty ),* $(,)? ) -> $ret:ty $(, with $caps:ident)? ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[allow(non_camel_case_types, clippy::large_enum_variant)]
        $vis mod $name {
            #[allow(unused_imports)]
            use super::*;

            /// The label every request of this interface is sent with.
            pub const LABEL: u32 = $label;

            /// One request per operation, named after it.
            #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
            pub enum Request {
                $( $(#[$op_meta])* $op { $( $arg: $ty ),* }, )*
            }

            /// One reply per operation, named after it.
            #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
            pub enum Reply {
                $( $op($ret), )*
            }

            /// Calls the server behind an endpoint cap (Write right; Grant and GrantReply for
            /// the operations that carry caps).
            #[derive(Clone, Copy, Debug)]
            pub struct Client {
                endpoint: $crate::CapSlot,
            }

            impl Client {
                /// A client of the server behind `endpoint` (a generated `caps::NAME`, or
                /// `caps::Endpoint::at(slot)`).
                pub const fn new(endpoint: $crate::caps::Endpoint) -> Client {
                    Client { endpoint: endpoint.slot() }
                }

                $( $crate::interface!(@client $(#[$op_meta])* $op ($( $arg: $ty ),*) -> $ret $(, $caps)?); )*
            }

            /// What a server of this interface does, one method per operation; `badge` is
            /// the badge of the caller's cap (who is asking, unforgeably).
            pub trait Server {
                $( $crate::interface!(@server $(#[$op_meta])* $op ($( $arg: $ty ),*) -> $ret $(, $caps)?); )*
            }

            /// Answers one decoded request (`arrived`: the caps that came with it); returns
            /// the reply and the caps to send with it.
            pub fn dispatch(server: &mut impl Server, badge: $crate::Badge, request: Request, arrived: &[$crate::CapSlot]) -> (Reply, $crate::ipc::SendCaps) {
                match request {
                    $( Request::$op { $( $arg ),* } => $crate::interface!(@answer server, badge, arrived, $op ($( $arg ),*) $(, $caps)?), )*
                }
            }

            /// Serves `endpoint` (Read right) forever with `server` ([`ipc::serve`]($crate::ipc::serve)'s
            /// loop); returns only if the endpoint fails. Caps neither come nor go: an interface
            /// with operations `with caps` is served with `serve_with_caps`.
            pub fn serve(endpoint: $crate::caps::Endpoint, server: &mut impl Server) -> $crate::ErrorCode {
                $crate::ipc::serve(endpoint.slot(), |badge, _label, request| dispatch(server, badge, request, &[]).0)
            }

            /// As `serve`, for the operations `with caps`: caps of a request land in the empty
            /// slots `receive` ([`ipc::serve_with_caps`]($crate::ipc::serve_with_caps)).
            #[allow(dead_code)]
            pub fn serve_with_caps(endpoint: $crate::caps::Endpoint, receive: &[$crate::CapSlot], server: &mut impl Server) -> $crate::ErrorCode {
                $crate::ipc::serve_with_caps(endpoint.slot(), receive, |badge, _label, request, arrived| dispatch(server, badge, request, arrived))
            }
        }
    };
}
