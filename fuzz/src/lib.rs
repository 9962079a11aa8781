//! The fuzz targets' entry functions (in `targets.rs`, which the corpus replay test includes too).

mod targets;

pub use targets::*;
