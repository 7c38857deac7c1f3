//! Dev-only: starts the real local stack for `scripts/dev.sh` and for the
//! integration tests — `nats-server -js`, `anvil`, the hub deployed with the
//! dev signer set, the exchange simulator, and the three services.
//!
//! Layout:
//! - [`tools`]: finding `nats-server` and `anvil` (installed by `scripts/bootstrap.sh`), free ports.
//! - [`process`]: child processes that cannot outlive the stack.
//! - [`deploy`]: deploying `OracleHub` and registering feeds.
//! - [`simulator`]: the exchanges' real wire formats on loopback, with moving prices.
//! - [`stack`]: putting it all together, [`Stack::start`].
//! - [`bench`]: the fetchers' cost benchmark.

pub mod bench;
pub mod deploy;
pub mod process;
pub mod simulator;
pub mod stack;
pub mod tools;

pub use stack::{Mode, Options, Stack, StackError, eventually, start_anvil, start_nats};
