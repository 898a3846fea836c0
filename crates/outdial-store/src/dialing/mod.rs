//! The dialing hot path (product §4, §5), by stage:
//!
//! | module | stage |
//! |---|---|
//! | [`dispatch`] | the dispatch cycle: lock, sweep, loads, candidates, admission |
//! | [`ticks`] | a tick's read of its next admitted contact, and the endings without a call |
//! | [`attempts`] | the attempt row, originate's point of no return, call ids |
//! | [`completion`] | ending an attempt exactly once and resolving its contact |
//!
//! Functions taking `&mut PgConnection` run inside the caller's transaction or on its
//! connection, so the dialer composes them (e.g. claim → DNC → DID → attempt row). Every
//! item is re-exported here: callers name `dialing::…`.

pub mod attempts;
pub mod completion;
pub mod dispatch;
pub mod ticks;

pub use attempts::*;
pub use completion::*;
pub use dispatch::*;
pub use ticks::*;
