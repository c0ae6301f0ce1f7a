//! What baton shows people and machines: the status table and its JSON form.

pub mod status;
