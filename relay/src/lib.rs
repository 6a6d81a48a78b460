//! MediBlock's relay, the paper's blockchain handshaker. Its HTTP service, chain client and
//! store arrive with the relay issue; this crate already links the shared protocol core.

pub use mediblock_protocol as protocol;
