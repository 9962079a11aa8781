//! The composition root of a gateway node: the HTTP server (pages, APIs, both WebSockets, probes,
//! metrics) over one router, and graceful shutdown. `main` only parses the command line and calls
//! into [`commands`]; tests start the real binary.

pub mod commands;

mod api;
mod auth;
mod break_glass;
mod chat;
mod dashboard;
mod errors;
mod health;
mod logging;
mod pages;
mod probes;
mod server;
mod shutdown;
mod sources;
mod staff;
mod webhooks;

pub use server::run;
pub use shutdown::shutdown_signal;
/// The staff frame parser, for the fuzz targets (`fuzz/`) and their corpus replay test.
pub use staff::frames::{parse as parse_staff_frame, StaffFrame};
