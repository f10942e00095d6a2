//! The bytes under the gateway: the frame codec and upgrade, the frames'
//! JSON, the outbound queues and their byte budgets, input pacing, socket
//! caps and cutting a socket off. Nothing here knows the actors.

pub mod budget;
pub mod caps;
pub mod frame;
pub mod input;
pub mod socket;
pub mod wire;
pub mod writer;
