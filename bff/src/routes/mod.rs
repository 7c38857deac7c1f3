//! HTTP handlers, one per file.

pub mod admin;
pub mod chains;
pub mod feeds;
pub mod health;
pub mod history;
pub mod openapi;
pub mod page;
pub mod prices;
pub mod refresh;
pub mod reports;
pub mod status;
pub mod stream;
pub mod submissions;
