//! Agent CLIs: the stream they print and how baton reads it.

pub mod stream;
