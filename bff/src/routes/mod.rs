//! HTTP handlers, one per file.

pub mod health;
pub mod prices;
