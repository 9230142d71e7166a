//! Sign-in by magic link: the mail it sends and the outbox sender.

pub mod mail;
