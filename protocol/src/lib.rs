#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod auth;
pub mod checkpoint;
pub mod encoding;
pub mod envelope;
pub mod error;
pub mod generator;
pub mod hash;
pub mod ids;
mod json;
pub mod keys;
pub mod merkle;
pub mod proof;
pub mod record;
pub mod rules;
pub mod template;
pub mod validated;
pub mod value;

pub use error::{DecodeError, Error, ProofError, Result};
