//! Placeholder: the webhook load client.
fn main() {}
